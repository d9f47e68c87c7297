"""The data version moves with every committed write, whichever connection made it, and not before
the commit."""

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.services.changes import changes_since, data_version, prune


def test_a_commit_on_one_connection_is_seen_on_another_only_after_commit(engine):
    reader, writer = Session(bind=engine), Session(bind=engine)
    try:
        before = data_version(reader).version
        reader.rollback()
        writer.execute(text("UPDATE checkpoint SET active = active WHERE id = (SELECT min(id) FROM checkpoint)"))
        assert data_version(reader).version == before  # not committed yet: not visible
        reader.rollback()
        writer.commit()
        after = data_version(reader)
        assert after.version > before and after.table == "checkpoint"
        assert changes_since(reader, before) == ["checkpoint"]
    finally:
        reader.close()
        writer.close()


def test_statements_not_rows_are_logged_and_pruning_keeps_the_version(session):
    before = data_version(session).version
    session.execute(text("UPDATE household SET residents = residents WHERE id IN (SELECT id FROM household LIMIT 500)"))
    assert data_version(session).version >= before + 1
    assert set(changes_since(session, before)) >= {"household"}
    top = data_version(session).version
    prune(session, keep=0)
    assert data_version(session).version == top
    assert session.execute(text("SELECT count(*) FROM change_log")).scalar_one() == 1
