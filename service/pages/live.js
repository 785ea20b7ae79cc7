(function () {
  "use strict";
  var root = document.documentElement;
  if (root.dataset.live !== "true" || !window.EventSource) {
    return;
  }
  var types = ["expulsion.reported", "incident.corrected", "incident.retracted",
    "incident.source_added"];
  var shown = Number(root.dataset.position);
  var wanted = shown;
  var busy = false;
  var query = types.map(function (t) { return "type=" + encodeURIComponent(t); });
  var stream = new EventSource("/v1/events/stream?" + query.join("&") + "&after=" + shown);

  function redraw() {
    if (busy || wanted <= shown) {
      return;
    }
    busy = true;
    var target = wanted;
    var url = new URL(window.location.href);
    url.searchParams.set("min_position", String(target));
    fetch(url.toString(), { headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (!answer.ok) {
          throw new Error("refresh answered " + answer.status);
        }
        return answer.text();
      })
      .then(function (page) {
        var fresh = new DOMParser().parseFromString(page, "text/html");
        var content = fresh.getElementById("content");
        if (content) {
          document.getElementById("content").replaceWith(document.adoptNode(content));
          shown = Math.max(shown, Number(fresh.documentElement.dataset.position));
          root.dataset.position = String(shown);
        }
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        busy = false;
        if (wanted > shown && shown >= target) {
          redraw(); // more came while this one was fetched
        }
      });
  }

  types.forEach(function (type) {
    stream.addEventListener(type, function (event) {
      wanted = Math.max(wanted, Number(event.lastEventId));
      redraw();
    });
  });
}());
