/*
 * Styling of the command map's layers, used by dash-leaflet through {"variable": "gridmap.<fn>"}.
 *
 * Every GeoJSON layer passes a `hideout` of the form
 *   {layer: "grid", t: {households: "户", ...}, riskNames: {"tier:high": "高风险", ...},
 *    kindNames: {testing_point: "便民核酸检测点", ...}}
 * so one set of functions serves all layers. Risk colours come from each feature's properties
 * (the risk_class table), never from this file; symbol colours live in gridmap.css.
 * Nothing here loads anything from the network: icons are CSS shapes in L.divIcon.
 */
window.gridmap = (function () {
    "use strict";

    var NEUTRAL = "#78909c";

    // Leaflet gives a path its classes only when it creates it; a restyle (a new hideout: a report
    // gone missing, a language switch) set colours but left the classes as they were, so whether
    // a missing report showed depended on whether the ids or the features arrived first. A style's
    // className now moves the path's classes too. (Leaflet loads with the first map, after this
    // file: patched on the first style asked for, before any restyle.)
    function syncClassesOnRestyle() {
        if (!window.L || !L.Path || L.Path.prototype._gmClassSync) { return; }
        var setStyle = L.Path.prototype.setStyle;
        L.Path.prototype._gmClassSync = true;
        L.Path.prototype.setStyle = function (style) {
            var before = this.options.className || "";
            setStyle.call(this, style);
            var after = style && style.className;
            var el = this._path;
            if (el && after !== undefined && after !== before) {
                before.split(/\s+/).forEach(function (c) { if (c) { L.DomUtil.removeClass(el, c); } });
                (after || "").split(/\s+/).forEach(function (c) { if (c) { L.DomUtil.addClass(el, c); } });
            }
            return this;
        };
    }

    function esc(value) {
        return String(value === null || value === undefined ? "" : value)
            .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
    }

    function hideoutOf(context) {
        return (context && context.hideout) || {};
    }

    function label(h, key) {
        return (h.t && h.t[key]) || key;
    }

    function riskName(p, h) {
        var key = (p.risk_scheme || "tier") + ":" + (p.risk || "");
        return (h.riskNames && (h.riskNames[key] || h.riskNames["area:" + p.risk] ||
            h.riskNames["tier:" + p.risk])) || p.risk_name || "";
    }

    // Geobuf (ST_AsGeobuf) carries booleans as "t" / "f"; GeoJSON as true / false.
    function flag(v) {
        if (v === "t" || v === "true") { return true; }
        if (v === "f" || v === "false") { return false; }
        return v;
    }

    // The community's report is missing today (its id in the hideout's `missing`, set by the page).
    function reportMissing(p, h) {
        var missing = (h && h.missing) || [];
        return missing.length > 0 && missing.indexOf(Number(p.id)) >= 0;
    }

    function num(n) {
        return (n === null || n === undefined) ? "—" : Number(n).toLocaleString();
    }

    // --- polygon styles ------------------------------------------------------------------------

    var STYLES = {
        district: function () {
            return {color: "#263238", weight: 3, opacity: 0.85, fill: false, className: "gm-district"};
        },
        subdistrict: function () {
            return {color: "#455a64", weight: 2, opacity: 0.8, fill: false, dashArray: "6 4",
                    className: "gm-subdistrict"};
        },
        community: function (p, h) {
            // Elevated communities must stand out at district scale.
            var sev = p.severity || 0;
            var s = {color: "#37474f", weight: 2, opacity: 0.9, fillColor: p.color || NEUTRAL,
                     fillOpacity: sev >= 3 ? 0.4 : (sev === 2 ? 0.32 : 0.12), className: "gm-community"};
            if (reportMissing(p, h)) {  // past the deadline without a report: an alarm (issue 6)
                s = L.extend(s, {color: "#d50000", weight: 4, opacity: 1, dashArray: "8 5",
                                 className: "gm-community gm-report-missing"});
            }
            return s;
        },
        grid: function (p) {
            var own = flag(p.risk_inherited) === false;
            // A grid with a class of its own (e.g. a sealed area) stands out; the others only
            // draw their outline, the community below already carries the colour.
            return {color: own ? (p.color || NEUTRAL) : "#546e7a", weight: own ? 2.5 : 1,
                    opacity: 0.95, dashArray: own ? null : "4 3",
                    fillColor: p.color || NEUTRAL, fillOpacity: own ? 0.45 : 0.02,
                    className: "gm-grid" + (own ? " gm-grid-own" : "")};
        },
        building: function (p) {
            return {color: "#37474f", weight: 0.5, opacity: 0.7, fillColor: p.color || NEUTRAL,
                    fillOpacity: (p.severity || 1) > 1 ? 0.85 : 0.55, className: "gm-building"};
        },
        compound: function () {
            return {color: "#6d4c41", weight: 1.2, opacity: 0.9, dashArray: "3 3", fillColor: "#6d4c41",
                    fillOpacity: 0.03, className: "gm-compound"};
        },
        controlled_area: function (p) {
            return {color: p.color || NEUTRAL, weight: 3, opacity: 1, dashArray: "10 6",
                    fillColor: p.color || NEUTRAL, fillOpacity: 0.22, className: "gm-controlled"};
        },
        service_point: function (p) {
            // Only delivery zones are polygons; their colour comes from the CSS class.
            return {weight: 2, opacity: 1, dashArray: "4 3", fillOpacity: 0.25,
                    className: "gm-sp-zone gm-sp-zone-" + (p.kind || "other")};
        }
    };

    function style(feature, context) {
        syncClassesOnRestyle();
        var h = hideoutOf(context);
        var fn = STYLES[h.layer];
        return fn ? fn(feature.properties || {}, h) : {color: NEUTRAL, weight: 1};
    }

    // --- point symbols -------------------------------------------------------------------------

    function icon(className, size, html) {
        return L.divIcon({className: "gm-icon " + className, iconSize: [size, size],
                          iconAnchor: [size / 2, size / 2], html: html || ""});
    }

    function keyHouseholdClass(p) {
        return flag(p["case"]) ? "gm-kh-case" : (flag(p.vulnerable) ? "gm-kh-vulnerable" : "gm-kh-other");
    }

    function pointToLayer(feature, latlng, context) {
        var h = hideoutOf(context);
        var p = feature.properties || {};
        var opts = {keyboard: false, riseOnHover: true};
        if (h.layer === "checkpoint") {
            opts.icon = icon("gm-cp" + (flag(p.active) === false ? " gm-cp-off" : ""), 18, '<div class="gm-cp-shape"></div>');
        } else if (h.layer === "service_point") {
            opts.icon = icon("gm-sp gm-sp-" + esc(p.kind), 22, '<div class="gm-sp-shape"></div>');
        } else if (h.layer === "gate") {
            opts.icon = icon("gm-gate " + (flag(p.is_open) ? "gm-gate-open" : "gm-gate-closed"), 10,
                             '<div class="gm-gate-shape"></div>');
        } else if (h.layer === "key_household") {
            opts.icon = icon("gm-kh " + keyHouseholdClass(p), 12, '<div class="gm-kh-shape"></div>');
        } else if (h.layer === "key_household_grid") {
            // a grid's key households, counted: the badge of a cluster, ringed in the colour of the
            // most pressing kind among them (case, vulnerable, other)
            var n = p.households || 0;
            opts.icon = icon("gm-cluster gm-khg " + keyHouseholdClass(p), n < 10 ? 22 : (n < 100 ? 28 : 34),
                             '<div class="gm-cluster-shape"><span>' + esc(num(n)) + "</span></div>");
        } else {
            return L.circleMarker(latlng, {radius: 5, color: NEUTRAL});
        }
        return L.marker(latlng, opts);
    }

    // Clusters of key households: a neutral badge, so its colour is never read as a risk class.
    function clusterToLayer(feature, latlng) {
        var n = feature.properties.point_count;
        var size = n < 10 ? 22 : (n < 100 ? 28 : 34);
        return L.marker(latlng, {
            icon: icon("gm-cluster", size, '<div class="gm-cluster-shape"><span>' +
                       esc(feature.properties.point_count_abbreviated) + "</span></div>")
        });
    }

    // --- tooltips --------------------------------------------------------------------------------

    function riskLine(p, h) {
        if (!p.risk) { return ""; }
        return '<div class="gm-tt-risk"><i style="background:' + esc(p.color || NEUTRAL) + '"></i>' +
            esc(riskName(p, h)) + "</div>";
    }

    function people(p, h) {
        return '<div class="gm-tt-sub">' + num(p.households) + " " + esc(label(h, "households")) +
            " · " + num(p.residents) + " " + esc(label(h, "residents")) + "</div>";
    }

    var TOOLTIPS = {
        subdistrict: function (p) { return "<b>" + esc(p.name) + "</b>"; },
        community: function (p, h) { return "<b>" + esc(p.name) + "</b>" + riskLine(p, h) + people(p, h); },
        grid: function (p, h) {
            return "<b>" + esc(p.name) + "</b> <span class=\"gm-tt-muted\">" + esc(p.community) + "</span>" +
                riskLine(p, h) + people(p, h);
        },
        building: function (p, h) { return "<b>" + esc(p.name) + "</b>" + people(p, h); },
        compound: function (p) { return "<b>" + esc(p.name) + "</b>"; },
        gate: function (p, h) {
            return "<b>" + esc(p.name) + "</b><div class=\"gm-tt-sub\">" +
                esc(label(h, flag(p.is_open) ? "open" : "closed")) +
                (flag(p.checkpoint) ? " · " + esc(label(h, "checkpoint")) : "") + "</div>";
        },
        checkpoint: function (p, h) {
            return "<b>" + esc(p.name) + "</b><div class=\"gm-tt-sub\">" + num(p.shifts_per_day) + " " +
                esc(label(h, "shifts")) + " · " + num(p.staff_per_shift) + " " + esc(label(h, "staff")) + "</div>";
        },
        service_point: function (p, h) {
            var kind = (h.kindNames && h.kindNames[p.kind]) || p.kind;
            var extra = [];
            if (p.capacity !== null && p.capacity !== undefined) {
                extra.push(esc(label(h, "capacity")) + " " + num(p.capacity));
            }
            if (p.hours) { extra.push(esc(p.hours)); }
            return "<b>" + esc(p.name) + "</b><div class=\"gm-tt-sub\">" + esc(kind) + "</div>" +
                (extra.length ? "<div class=\"gm-tt-sub\">" + extra.join(" · ") + "</div>" : "");
        },
        key_household_grid: function (p, h) {
            return "<b>" + esc(p.name) + "</b><div class=\"gm-tt-sub\">" + num(p.households) + " " +
                esc(label(h, "households")) + " · " + num(p.persons) + " " + esc(label(h, "persons")) + "</div>";
        },
        // Counts only: a key household's tooltip never names anyone.
        key_household: function (p, h) {
            return "<b>" + esc(p.name) + "</b><div class=\"gm-tt-sub\">" + num(p.persons) + " " +
                esc(label(h, "persons")) + "</div>";
        },
        controlled_area: function (p, h) {
            return "<b>" + esc(p.name || p.code) + "</b>" + riskLine(p, h) +
                "<div class=\"gm-tt-sub\">" + esc(label(h, "version")) + " " + num(p.version) + "</div>";
        }
    };

    // Far out the point symbols shrink (gridmap.css: .gm-zoom-far, and further at whole-district
    // scale .gm-zoom-district) so the risk picture stays legible.
    var FAR_ZOOM = 15;
    var DISTRICT_ZOOM = 14;

    function watchZoom(map) {
        if (!map || map._gmZoomWatched) { return; }
        map._gmZoomWatched = true;
        var toggle = function (className, on) {
            (on ? L.DomUtil.addClass : L.DomUtil.removeClass)(map.getContainer(), className);
        };
        var sync = function () {
            toggle("gm-zoom-far", map.getZoom() < FAR_ZOOM);
            toggle("gm-zoom-district", map.getZoom() < DISTRICT_ZOOM);
        };
        map.on("zoomend", sync);
        sync();
    }

    var selected = null;

    function select(layer) {
        var old = selected && selected.getElement && selected.getElement();
        if (old) { L.DomUtil.removeClass(old, "gm-selected"); }
        selected = layer;
        var el = layer.getElement && layer.getElement();
        if (el) { L.DomUtil.addClass(el, "gm-selected"); }
        if (layer.bringToFront) { layer.bringToFront(); }
    }

    function onEachFeature(feature, layer, context) {
        var h = hideoutOf(context);
        var p = feature.properties || {};
        layer.once("add", function () { watchZoom(layer._map); });
        if (p.cluster) { return; }
        var tip = TOOLTIPS[h.layer];
        if (tip) {
            var isPoint = feature.geometry && feature.geometry.type === "Point";
            // Built when it opens, not for each of a city's 10,000 grids as they are drawn.
            layer.bindTooltip(function () { return tip(p, h); }, {
                sticky: !isPoint, direction: isPoint ? "top" : "auto", className: "gm-tooltip",
                offset: isPoint ? [0, -8] : [12, 0], opacity: 0.96
            });
        }
        layer.on("click", function () { select(layer); });
    }

    return {
        style: style,
        pointToLayer: pointToLayer,
        clusterToLayer: clusterToLayer,
        onEachFeature: onEachFeature,
        flag: flag
    };
}());

/* ================================================================================================
 * The command map's view (pages/map.py, issue 8): which part of each layer to fetch.
 *
 * Leaflet's moveend (and, once, the first layer drawn: the opening fitBounds happens before
 * dash-leaflet binds handlers) reports {zoom, bbox} to the map's view store; the clientside
 * callback `urls` turns it into each layer's URL from the page's config:
 *   polygon layers sent whole get `z=<band>` and refetch only when the band changes;
 *   viewport layers get `z` and a bbox snapped outwards to the tile grid of that zoom (so small
 *   pans reuse the same URL and the browser's copy), and below their minimum zoom a URL the
 *   server answers empty without a query.
 * The first report keeps the opening URL of a polygon layer (cut by the server for the zoom it
 * expected): it comes while those layers are still loading, and dash-leaflet's GeoJSON ignores a
 * new url while it fetches, so the URL would change in Dash and not on the map, and the next band
 * change would never be fetched. Its band follows from the first move on.
 * Every map page with a district map uses this (pages/map.py, and through web/map_view.py the
 * area editor and the tasking map): the store is "<map id>-view".
 * ============================================================================================= */
window.gridmap.view = (function () {
    "use strict";

    function report(map, ctx, isFirst) {
        var dc = window.dash_clientside;
        if (!map || !ctx || !ctx.id || !dc || !dc.set_props) { return; }
        map._gmViewSent = true;
        var b = map.getBounds();
        var data = {zoom: map.getZoom(), bbox: [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]};
        if (isFirst) { data.first = true; }
        dc.set_props(ctx.id + "-view", {data: data});
    }

    function moved(e, ctx) {
        report((ctx && ctx.map) || (e && e.target), ctx, false);
    }

    function first(e, ctx) {
        var map = ctx && ctx.map;
        if (map && !map._gmViewSent) { report(map, ctx, true); }
    }

    function band(config, zoom) {
        if (zoom >= config.fullDetail) { return config.fullDetail; }
        var best = null;
        config.bands.forEach(function (b) { if (b <= zoom && (best === null || b > best)) { best = b; } });
        return best === null ? config.bands[0] : best;
    }

    function snapped(bbox, zoom) {
        var step = 360 / Math.pow(2, Math.floor(zoom));
        var down = function (v) { return +(Math.floor(v / step) * step).toFixed(6); };
        var up = function (v) { return +(Math.ceil(v / step) * step).toFixed(6); };
        return [down(bbox[0]), down(bbox[1]), up(bbox[2]), up(bbox[3])].join(",");
    }

    // (view, config, url of each layer...) -> [url of each layer..., the hint's class]; no_update
    // where a URL is unchanged, or where a viewport layer never fetched and is still below its zoom.
    function urls(view, config) {
        var dc = window.dash_clientside;
        var known = Array.prototype.slice.call(arguments, 2);
        if (!view || !config) { return known.map(function () { return dc.no_update; }).concat([dc.no_update]); }
        var zoom = view.zoom;
        var out = config.layers.map(function (layer, i) {
            var url = null;
            var hasMax = layer.maxZoom !== null && layer.maxZoom !== undefined;
            if (layer.minZoom !== null && layer.minZoom !== undefined) {
                if (hasMax && zoom >= layer.maxZoom) {
                    // a stand-in (key households per grid) hands over to the detail layer
                    url = known[i] ? layer.base + "&z=" + layer.maxZoom : null;
                } else if (zoom >= layer.minZoom) {
                    url = layer.base + "&z=" + (Math.floor(zoom * 4) / 4) + "&bbox=" + snapped(view.bbox, zoom);
                } else if (known[i]) {
                    url = layer.base + "&z=0";  // answered empty, without a query; one URL, cached
                }
            } else if (layer.generalised && !(view.first && known[i])) {
                url = layer.base + "&z=" + band(config, zoom);
            }
            return (url === null || known[i] === url) ? dc.no_update : url;
        });
        out.push("gm-zoom-hint" + (zoom < config.hintZoom ? "" : " gm-zoom-hint-off"));
        return out;
    }

    return {moved: moved, first: first, urls: urls};
}());

/* ================================================================================================
 * Area editor (pages/areas.py): the polygons of dash-leaflet's EditControl, reported to Dash.
 *
 * dash-leaflet's own EditControl handlers turn a polygon with a hole into a broken LineString and
 * report nothing while a vertex is dragged, so the page sets disableDefaultEventHandlers and these
 * functions do the reporting: on every draw, edit, vertex drag, delete or load the EditControl's
 * `geojson` becomes a FeatureCollection made by Leaflet's own toGeoJSON (holes and all), with
 * `event` (what changed) and `seq`; a shape just drawn carries properties.created (cut mode takes
 * it out of the others, on the server). The server sends drawings back through the `load`
 * clientside callback (a union after a click, a cut, a version to edit). Strings come from
 * i18n.py through the page; nothing is fetched from the network.
 * ============================================================================================= */
window.gridmap.areas = (function () {
    "use strict";

    // The one editor on the page, from its "draw:mounted" event: the FeatureGroup, its map, the
    // L.Control.Draw and the EditControl's Dash id. Browser state only; the server keeps none.
    var editor = {group: null, map: null, control: null, id: null, pending: null, seq: 0,
                  style: {color: "#0b3d91", fillColor: "#0b3d91"}, cut: false};

    var BASE_STYLE = {weight: 3, opacity: 1, fillOpacity: 0.2};
    var CUT_STYLE = {color: "#c62828", weight: 2, dashArray: "6 4", fillColor: "#c62828", fillOpacity: 0.12};

    function areaStyle() {
        return L.extend({}, BASE_STYLE, editor.style);
    }

    // New shapes: the area's colour, or red and dashed while cutting a hole.
    function shapeStyle() {
        return editor.cut ? CUT_STYLE : areaStyle();
    }

    function collection(event, created) {
        var features = [];
        if (editor.group) {
            editor.group.eachLayer(function (layer) {
                if (!layer.toGeoJSON) { return; }
                var feature = layer.toGeoJSON(7);
                feature.properties = (created && layer === created) ? {created: true} : {};
                features.push(feature);
            });
        }
        editor.seq += 1;
        return {type: "FeatureCollection", features: features, event: event, seq: editor.seq};
    }

    function emit(event, created) {
        var dc = window.dash_clientside;
        if (!editor.id || !dc || !dc.set_props) { return; }
        dc.set_props(editor.id, {geojson: collection(event, created)});
    }

    function apply(data) {
        var group = editor.group;
        group.clearLayers();
        L.geoJSON(data.geojson || {type: "FeatureCollection", features: []}, {style: areaStyle})
            .eachLayer(function (layer) { group.addLayer(layer); });
        if (data.fit && group.getLayers().length && editor.map) {
            editor.map.fitBounds(group.getBounds(), {padding: [60, 60], maxZoom: 18});
        }
    }

    // EditControl eventHandlers ------------------------------------------------------------------

    function mounted(ref, props) {
        editor.control = ref && ref.instance;
        editor.group = editor.control && editor.control.options.edit.featureGroup;
        editor.map = (ref && ref.context && ref.context.map) || (editor.group && editor.group._map);
        editor.id = props && props.id;
        if (editor.texts) { localize(editor.texts); }
        if (editor.pending && editor.group) {
            var data = editor.pending;
            editor.pending = null;
            apply(data);
            emit("load", null);
        }
    }

    function changed(e) {
        var created = (e && e.type === "draw:created") ? e.layer : null;
        if (created && created.setStyle) { created.setStyle(shapeStyle()); }
        // Leaflet.draw adds a created layer to the group in its own handler: report after it.
        setTimeout(function () { emit(e ? e.type : "change", created); }, 0);
    }

    // clientside callbacks -------------------------------------------------------------------------

    // A drawing from the server into the editor; the editor's new FeatureCollection goes to the
    // EditControl's geojson (or, before the editor is mounted, it waits and is reported on mount).
    function load(data) {
        var dc = window.dash_clientside;
        if (!data) { return dc.no_update; }
        if (!editor.group) { editor.pending = data; return dc.no_update; }
        apply(data);
        return collection("load", null);
    }

    function setText(selector, text) {
        if (!editor.map || !text) { return; }
        var el = editor.map.getContainer().querySelector(selector);
        if (el) { el.title = text; }
    }

    // Leaflet.draw's tooltips and buttons in the page's language. Action buttons and tooltips read
    // L.drawLocal when shown; the toolbar's button titles were set when it was built.
    function localize(texts) {
        editor.texts = texts;
        if (!L.drawLocal || !texts) { return; }
        var d = L.drawLocal.draw, e = L.drawLocal.edit;
        d.toolbar.actions = {title: texts.cancel_title, text: texts.cancel};
        d.toolbar.finish = {title: texts.finish_title, text: texts.finish};
        d.toolbar.undo = {title: texts.undo_title, text: texts.undo};
        d.toolbar.buttons.polygon = texts.polygon;
        d.toolbar.buttons.rectangle = texts.rectangle;
        d.handlers.polygon.tooltip = {start: texts.poly_start, cont: texts.poly_cont, end: texts.poly_end};
        d.handlers.polyline.error = texts.cross_error;
        d.handlers.polyline.tooltip = {start: texts.poly_start, cont: texts.poly_cont, end: texts.poly_end};
        d.handlers.rectangle.tooltip = {start: texts.rect_start};
        d.handlers.simpleshape.tooltip = {end: texts.rect_end};
        e.toolbar.actions.save = {title: texts.save_title, text: texts.save};
        e.toolbar.actions.cancel = {title: texts.cancel_edit_title, text: texts.cancel};
        e.toolbar.actions.clearAll = {title: texts.clear_title, text: texts.clear};
        e.toolbar.buttons = {edit: texts.edit, editDisabled: texts.edit_disabled, remove: texts.remove,
                             removeDisabled: texts.remove_disabled};
        e.handlers.edit.tooltip = {text: texts.edit_tip, subtext: texts.edit_subtip};
        e.handlers.remove.tooltip = {text: texts.remove_tip};
        setText(".leaflet-draw-draw-polygon", texts.polygon);
        setText(".leaflet-draw-draw-rectangle", texts.rectangle);
        var has = editor.group && editor.group.getLayers().length;
        setText(".leaflet-draw-edit-edit", has ? texts.edit : texts.edit_disabled);
        setText(".leaflet-draw-edit-remove", has ? texts.remove : texts.remove_disabled);
    }

    // The tool, the class colour and the language: styles new shapes (cut mode draws red, dashed
    // holes), recolours the drawing and returns the map wrapper's class (a crosshair in pick modes).
    function configure(mode, color, lang, texts) {
        editor.cut = mode === "cut";
        if (color) { editor.style = {color: color, fillColor: color}; }
        var style = shapeStyle();
        if (editor.control && editor.control.setDrawingOptions) {
            editor.control.setDrawingOptions({polygon: {shapeOptions: style}, rectangle: {shapeOptions: style}});
        }
        if (editor.group) { editor.group.setStyle(areaStyle()); }
        localize(texts && texts[lang === "en" ? "en" : "zh"]);
        var pick = mode && mode.indexOf("add_") === 0;
        return "gm-map-wrap gm-ae-map-wrap gm-ae-mode-" + (mode || "draw") + (pick ? " gm-ae-picking" : "");
    }

    // styles of the page's own layers ----------------------------------------------------------

    // Tooltips as on the command map, without its click-to-select highlight (a click here picks).
    function onEachFeature(feature, layer, context) {
        window.gridmap.onEachFeature(feature, layer, context);
        layer.off("click");
    }

    // The area being edited is drawn by the editor, not by the layer of current areas.
    function hideEditing(feature, context) {
        var key = ((context && context.hideout) || {}).editing;
        return key === null || key === undefined || (feature.properties || {}).code !== key;
    }

    var COMPARE = {
        old: {color: "#546e7a", weight: 2, opacity: 0.9, dashArray: "6 4", fill: false},
        "new": {color: "#263238", weight: 2, opacity: 0.9, fill: false},
        added: {color: "#bf360c", weight: 1.5, opacity: 1, fillColor: "#f4511e", fillOpacity: 0.5},
        released: {color: "#1b5e20", weight: 1.5, opacity: 1, fillColor: "#43a047", fillOpacity: 0.5},
        theirs: {color: "#ef6c00", weight: 3, opacity: 1, dashArray: "10 6", fillColor: "#ef6c00", fillOpacity: 0.08}
    };

    function compareStyle(feature) {
        var kind = (feature.properties || {}).kind;
        return L.extend({interactive: false, className: "gm-ae-compare gm-ae-compare-" + kind},
                        COMPARE[kind] || COMPARE.old);
    }

    return {
        mounted: mounted,
        changed: changed,
        load: load,
        configure: configure,
        onEachFeature: onEachFeature,
        hideEditing: hideEditing,
        compareStyle: compareStyle
    };
}());

/* ================================================================================================
 * tasks and reports (issue 6): the tasking map (pages/tasks.py) and the data-version poll that
 * refreshes the tasking, field and reporting screens.
 *
 * The tasking map reuses the area editor's EditControl handlers (gridmap.areas.mounted / changed /
 * load) for the drawn-area selection. Its background layers are styled by gridmap.style, with what
 * is selected (a grid, buildings, a controlled area) outlined from the layer's hideout.selected.
 * A task's items are points coloured by state; the colours are CSS (gm-tk-state-*), shared with
 * the progress bars.
 * ============================================================================================= */
window.gridmap.tasks = (function () {
    "use strict";

    var SELECTED = {color: "#006064", weight: 3, opacity: 1, fillColor: "#26c6da", fillOpacity: 0.5, dashArray: null};

    function hideoutOf(context) {
        return (context && context.hideout) || {};
    }

    function isSelected(h, p, feature) {
        var sel = h.selected;
        if (sel === null || sel === undefined) { return false; }
        var key = h.layer === "controlled_area" ? p.code : (feature.id !== undefined ? feature.id : p.id);
        return Array.isArray(sel) ? sel.indexOf(key) >= 0 : sel === key;
    }

    function style(feature, context) {
        var h = hideoutOf(context);
        var base = window.gridmap.style(feature, context);
        if (isSelected(h, feature.properties || {}, feature)) {
            return L.extend({}, base, SELECTED, {className: (base.className || "") + " gm-tk-selected"});
        }
        return base;
    }

    function esc(value) {
        return String(value === null || value === undefined ? "" : value)
            .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
    }

    function itemPoint(feature, latlng, context) {
        var h = hideoutOf(context);
        var p = feature.properties || {};
        var chosen = h.selected !== null && h.selected !== undefined && h.selected === feature.id;
        return L.circleMarker(latlng, {
            radius: chosen ? 9 : 6, weight: chosen ? 3 : (p.overdue ? 2.5 : 1.2), opacity: 1, fillOpacity: 0.95,
            className: "gm-tk-item gm-tk-state-" + esc(p.state) + (p.overdue ? " gm-tk-item-overdue" : "") +
                (chosen ? " gm-tk-item-chosen" : ""),
            bubblingMouseEvents: false
        });
    }

    function itemEach(feature, layer, context) {
        var h = hideoutOf(context);
        var p = feature.properties || {};
        var names = h.states || {};
        var lines = "<b>" + esc(p.place) + "</b><div class=\"gm-tt-sub\">" + esc(names[p.state] || p.state) +
            (p.assignee ? " · " + esc(p.assignee) : "") + "</div>";
        if (p.overdue) { lines += "<div class=\"gm-tt-sub gm-tk-tt-late\">" + esc(h.overdue || "") + "</div>"; }
        layer.bindTooltip(lines, {direction: "top", className: "gm-tooltip", offset: [0, -6], opacity: 0.96});
    }

    return {style: style, itemPoint: itemPoint, itemEach: itemEach};
}());

window.gridmap.changes = (function () {
    "use strict";

    // dcc.Interval tick -> the data version from /api/changes; no_update while it has not moved, so
    // the screens reload only after a write (by anyone, through any worker).
    // The data version at /api/changes, or null when it could not be read (database down, logged out).
    function version(url) {
        return fetch(url, {credentials: "same-origin", cache: "no-store"})
            .then(function (r) { return r.ok ? r.json() : null; })
            .then(function (d) { return d && d.version !== undefined ? d.version : null; })
            .catch(function () { return null; });
    }

    function poll(_n, current) {
        var dc = window.dash_clientside;
        if (!current || !current.url || document.hidden) { return dc.no_update; }
        return version(current.url).then(function (v) {
            return v === null || v === current.version ? dc.no_update : {url: current.url, version: v};
        });
    }

    return {poll: poll, version: version};
}());

/* ================================================================================================
 * coverage views (issue 5): the command map's choropleth, the wall (/wall) and the grid sheet
 * (/grid/<id>).
 *
 * The choropleth draws the grid layer's own features (its geobuf URL, generalised for the zoom
 * band, from the browser's copy) styled by the metric's values in the hideout (issue 8,
 * coverage_components.choropleth_values): values {grid id: [class, printed value, position]},
 * colors {class: colour}, with the metric's name and the class labels in the page's language.
 * Features that carry their own class and colour (a GeoJSON of services.coverage_layers) are
 * drawn as they are. The wall and
 * the grid sheet poll /api/changes and reload only when the data version moved.
 * ============================================================================================= */
window.gridmap.coverage = (function () {
    "use strict";

    function hideoutOf(context) {
        return (context && context.hideout) || {};
    }

    function esc(value) {
        return String(value === null || value === undefined ? "" : value)
            .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
    }

    // A grid's class, colour, printed value and position: from the hideout's values, else its own.
    function metricOf(feature, h) {
        var p = feature.properties || {};
        var id = feature.id !== undefined ? feature.id : p.id;
        var v = h.values && h.values[String(id)];
        if (!v) { return p; }
        return L.extend({}, p, {"class": v[0], text: v[1], position: v[2], color: (h.colors || {})[v[0]]});
    }

    function choroplethStyle(feature, context) {
        var p = metricOf(feature, hideoutOf(context));
        return {color: "#ffffff", weight: 1.2, opacity: 0.9, fillColor: p.color || "#9aa5ad",
                fillOpacity: 0.68, className: "gm-choropleth gm-choropleth-" + esc(p["class"])};
    }

    function choroplethEach(feature, layer, context) {
        var h = hideoutOf(context);
        var p = metricOf(feature, h);
        window.gridmap.onEachFeature(feature, layer, context);  // click highlight, zoom watch
        var cls = (h.classes && h.classes[p["class"]]) || p["class"] || "";
        layer.bindTooltip(
            "<b>" + esc(p.name) + "</b> <span class=\"gm-tt-muted\">" + esc(p.community) + "</span>" +
            "<div class=\"gm-tt-sub\">" + esc(h.metric || "") + "：<b>" + esc(p.text) + "</b></div>" +
            "<div class=\"gm-tt-risk\"><i style=\"background:" + esc(p.color) + "\"></i>" + esc(cls) +
            " · #" + esc(p.position) + "</div>",
            {sticky: true, className: "gm-tooltip", offset: [12, 0], opacity: 0.96});
    }

    // The wall: the command map's styles on a dark ground (gridmap.css lightens the outlines).
    function wallStyle(feature, context) {
        var s = window.gridmap.style(feature, context);
        var h = hideoutOf(context);
        if (h.layer === "community") {
            // (a missing report keeps its class gm-report-missing: gridmap.css draws it on the dark ground)
            var sev = (feature.properties || {}).severity || 0;
            s = L.extend({}, s, {fillOpacity: sev >= 3 ? 0.75 : (sev === 2 ? 0.6 : 0.28), weight: 1.5});
        } else if (h.layer === "grid") {
            var own = window.gridmap.flag((feature.properties || {}).risk_inherited) === false;
            s = L.extend({}, s, {fillOpacity: own ? 0.8 : 0, weight: own ? 2 : 0.6, opacity: own ? 1 : 0.45});
        } else if (h.layer === "controlled_area") {
            s = L.extend({}, s, {fillOpacity: 0.45, weight: 3});
        }
        return L.extend({}, s, {interactive: false});
    }

    // The grid sheet's small map: the grid's outline and its buildings, darker with more key people.
    function sheetStyle(feature) {
        var p = feature.properties || {};
        if (p.kind === "grid") {
            return {color: "#0b3d91", weight: 3, opacity: 0.9, fillColor: "#0b3d91", fillOpacity: 0.04,
                    dashArray: "6 4", interactive: false, className: "gm-gp-outline"};
        }
        var k = p.key_persons || 0;
        return {color: "#37474f", weight: 1, opacity: 0.8, fillColor: k >= 10 ? "#6a1b9a" : (k >= 3 ? "#9c64c8" : "#b0bec5"),
                fillOpacity: 0.8, className: "gm-gp-building"};
    }

    function sheetEach(feature, layer, context) {
        var h = hideoutOf(context);
        var p = feature.properties || {};
        if (p.kind !== "building") { return; }
        var t = h.t || {};
        layer.bindTooltip("<b>" + esc(p.name) + "</b><div class=\"gm-tt-sub\">" + esc(p.households) + " " +
            esc(t.households || "") + " · " + esc(p.key_persons) + " " + esc(t.persons || "") + "</div>",
            {sticky: true, className: "gm-tooltip", opacity: 0.96});
    }

    // dcc.Interval tick -> [data version, link state]. The version is no_update until it moves, so
    // the screens recompute only after a write committed by anyone, through any worker.
    // As gridmap.changes.poll, with the link's state (ok / down) for the screens that show it.
    function poll(_n, url, known, link) {
        var dc = window.dash_clientside;
        if (!url) { return [dc.no_update, dc.no_update]; }
        return window.gridmap.changes.version(url).then(function (v) {
            if (v === null) { return [dc.no_update, link === "down" ? dc.no_update : "down"]; }
            return [v === known ? dc.no_update : v, link === "ok" ? dc.no_update : "ok"];
        });
    }

    // The wall's views, one after the other when rotation is on; charts redraw for their new size.
    function rotate(n, count) {
        var view = count > 1 ? (n || 0) % count : 0;
        setTimeout(function () { window.dispatchEvent(new Event("resize")); }, 50);
        return "gm-wall gm-wall-view-" + view;
    }

    // The grid sheet: bring the contact form into view when a person's "log" button is pressed.
    function showForm(_clicks, formId) {
        var el = document.getElementById(formId);
        if (el && el.scrollIntoView) { el.scrollIntoView({behavior: "smooth", block: "start"}); }
        return window.dash_clientside.no_update;
    }

    return {choroplethStyle: choroplethStyle, choroplethEach: choroplethEach, wallStyle: wallStyle,
            sheetStyle: sheetStyle, sheetEach: sheetEach, poll: poll, rotate: rotate, showForm: showForm};
}());
