/// The flame graph's style and script, embedded in every SVG so it works offline. Hover shows a
/// frame's title (name, weight, share) in the details line; click zooms to a frame (its ancestors
/// span the width, its descendants are scaled up, the rest is hidden); "Search" or `?s=REGEX`
/// highlights the frames whose names match and shows the share they cover; `?x=&y=` zooms at load to
/// the frame at that position, so a zoomed view can be shared as a link.
enum FlameGraphScript {
    static let style = """
        text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; }
        #title { font-size: 17px; }
        #search, #unzoom { cursor: pointer; }
        .hide { display: none; }
        #frames g { cursor: pointer; }
        #frames g:hover rect { stroke: #000; stroke-width: 0.5; }
        """

    static let script = """
        "use strict";
        var frames = [], details, matchedText, unzoomBtn, searchBtn, W, pad, charW = 7.1, H;
        function init(evt) {
          var svg = document.documentElement;
          W = +svg.getAttribute("data-width"); pad = +svg.getAttribute("data-pad"); H = +svg.getAttribute("data-frame-height");
          details = document.getElementById("details"); matchedText = document.getElementById("matched");
          unzoomBtn = document.getElementById("unzoom"); searchBtn = document.getElementById("search");
          var gs = document.getElementById("frames").children;
          for (var i = 0; i < gs.length; i++) {
            var g = gs[i], r = g.querySelector("rect"), t = g.querySelector("text"), title = g.querySelector("title").textContent;
            var f = { g: g, r: r, t: t, x: +r.getAttribute("x"), w: +r.getAttribute("width"), y: +r.getAttribute("y"),
                      name: title.slice(0, title.lastIndexOf("\\n")), title: title, fill: r.getAttribute("fill") };
            frames.push(f);
            g.addEventListener("mouseover", (function (f) { return function () { details.textContent = f.title.replace("\\n", ": "); }; })(f));
            g.addEventListener("mouseout", function () { details.textContent = " "; });
            g.addEventListener("click", (function (f) { return function () { zoom(f); }; })(f));
          }
          unzoomBtn.addEventListener("click", unzoom);
          searchBtn.addEventListener("click", function () {
            var term = prompt("Search for (a regular expression):", "");
            if (term !== null) search(term);
          });
          var params = new URLSearchParams(document.location.search);
          if (params.get("x") !== null && params.get("y") !== null) {
            var px = +params.get("x"), py = +params.get("y");
            for (var j = 0; j < frames.length; j++) {
              var c = frames[j];
              if (Math.abs(c.y - py) < 0.5 && px >= c.x && px < c.x + c.w) { zoom(c); break; }
            }
          }
          if (params.get("s")) search(params.get("s"));
        }
        function label(f, x, w) {
          f.r.setAttribute("x", x.toFixed(2)); f.r.setAttribute("width", w.toFixed(2));
          if (!f.t) return;
          var n = Math.floor((w - 6) / charW);
          f.t.setAttribute("x", (x + 3).toFixed(2));
          f.t.textContent = n < 3 ? "" : (f.name.length <= n ? f.name : f.name.slice(0, n - 2) + "..");
        }
        function zoom(f) {
          var eps = 1e-6, scale = W / f.w;
          for (var i = 0; i < frames.length; i++) {
            var e = frames[i];
            if (e.y <= f.y && e.x >= f.x - eps && e.x + e.w <= f.x + f.w + eps) {
              e.g.classList.remove("hide"); label(e, pad + (e.x - f.x) * scale, e.w * scale);
            } else if (e.y > f.y && e.x <= f.x + eps && e.x + e.w >= f.x + f.w - eps) {
              e.g.classList.remove("hide"); label(e, pad, W);
            } else {
              e.g.classList.add("hide");
            }
          }
          unzoomBtn.classList.remove("hide");
        }
        function unzoom() {
          for (var i = 0; i < frames.length; i++) { frames[i].g.classList.remove("hide"); label(frames[i], frames[i].x, frames[i].w); }
          unzoomBtn.classList.add("hide");
        }
        function search(term) {
          var re;
          try { re = new RegExp(term); } catch (e) { matchedText.textContent = "bad regular expression"; return; }
          var spans = [];
          for (var i = 0; i < frames.length; i++) {
            var f = frames[i], hit = f.y < frames[frames.length - 1].y && re.test(f.name);
            f.r.setAttribute("fill", hit ? "rgb(230,0,230)" : f.fill);
            f.g.classList.toggle("match", hit);
            if (hit) spans.push([f.x, f.x + f.w]);
          }
          // A match inside another match covers nothing more: add up the union of the spans.
          spans.sort(function (a, b) { return a[0] - b[0]; });
          var covered = 0, end = -Infinity;
          for (var k = 0; k < spans.length; k++) {
            var s = Math.max(spans[k][0], end);
            if (spans[k][1] > s) { covered += spans[k][1] - s; end = spans[k][1]; }
          }
          matchedText.textContent = spans.length ? "Matched: " + (100 * covered / W).toFixed(1) + "%" : "";
        }
        """
}
