from gridmap.web import create_app

app = create_app()
server = app.server
