import Foundation
import TestSupport
import XCTest

/// Headless Chromium as the flame graph's peer: loads a page and returns the DOM after its scripts ran.
enum Chromium {
    static func dumpDOM(_ url: URL, query: String = "") throws -> String {
        let chromium = try Peer.find("chromium", hint: "Debian's chromium")
        let profile = Peer.tempFile("chromium-profile")
        // As root Chromium needs --no-sandbox; file access lets the test page read the SVG it embeds.
        let argv = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--allow-file-access-from-files", "--user-data-dir=\(profile.path)", "--virtual-time-budget=10000",
            "--dump-dom", url.absoluteString + query,
        ]
        let r = try Run.capture(argv, timeout: 120)
        defer { try? FileManager.default.removeItem(at: profile) }
        guard r.status == 0, !r.stdout.isEmpty else {
            let reason = "headless chromium did not start (status \(r.status), signal \(r.signal)): \(r.stderr.suffix(400))"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        return r.stdout
    }

    /// Loads `svg` inside a page whose script exercises it as a user would (hover, click, search) and
    /// reports what the SVG's DOM and the browser's layout then show, as JSON.
    /// `query` is added to the SVG's address (`?s=…`, `?x=…&y=…`).
    static func exercise(_ svg: URL, zoomTo: String, search: String, query: String = "") throws -> Data {
        let page = svg.deletingLastPathComponent().appendingPathComponent(svg.deletingPathExtension().lastPathComponent + "-page.html")
        let html = """
            <!DOCTYPE html><html><body>
            <iframe id="f" src="\(svg.lastPathComponent)\(query)" width="1200" height="900"></iframe>
            <pre id="out"></pre>
            <script>
            document.getElementById("f").onload = function () {
              var d = this.contentDocument, w = this.contentWindow, out = {};
              var gs = Array.from(d.getElementById("frames").children);
              function snapshot() {
                return gs.map(function (g) {
                  var r = g.querySelector("rect"), t = g.querySelector("text");
                  return { title: g.querySelector("title").textContent, width: +r.getAttribute("width"),
                           rendered: r.getBoundingClientRect().width, fill: r.getAttribute("fill"),
                           hidden: getComputedStyle(g).display === "none", text: t ? t.textContent : null };
                });
              }
              out.initial = snapshot();
              var target = gs.find(function (g) { return g.querySelector("title").textContent.split("\\n")[0] === \(jsString(zoomTo)); });
              target.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
              out.details = d.getElementById("details").textContent;
              target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
              out.zoomed = snapshot();
              d.getElementById("unzoom").dispatchEvent(new MouseEvent("click", { bubbles: true }));
              w.search(\(jsString(search)));
              out.matched = d.getElementById("matched").textContent;
              out.searched = snapshot();
              document.getElementById("out").textContent = JSON.stringify(out);
            };
            </script></body></html>
            """
        try html.write(to: page, atomically: true, encoding: .utf8)
        let dom = try dumpDOM(page)
        guard let start = dom.range(of: "<pre id=\"out\">"), let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex) else {
            throw TestSupportError("the test page produced no result: \(dom.prefix(2000))")
        }
        let text = String(dom[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        return Data(text.utf8)
    }

    static func jsString(_ s: String) -> String {
        let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
