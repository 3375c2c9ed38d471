(function () {
  "use strict";
  // Open the transcript named in the address (#t-...) and bring its failing turn into view.
  function focusTranscript() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (!id) { return; }
    var el = document.getElementById(id);
    if (!el || !el.classList.contains("transcript")) { return; }
    var bad = el.querySelector(".turn.failing");
    window.setTimeout(function () { (bad || el).scrollIntoView({block: bad ? "center" : "start"}); }, 0);
  }
  window.addEventListener("hashchange", focusTranscript);
  focusTranscript();

  // Filter the failed-attempts table by brain or failure class.
  var sel = document.getElementById("fail-filter");
  if (sel) {
    sel.addEventListener("change", function () {
      var v = sel.value;
      var rows = document.querySelectorAll("#failure-table tbody tr");
      for (var i = 0; i < rows.length; i++) {
        var tr = rows[i];
        var hit = !v || tr.getAttribute("data-brain") === v ||
          (" " + (tr.getAttribute("data-classes") || "") + " ").indexOf(" " + v + " ") >= 0;
        tr.style.display = hit ? "" : "none";
      }
    });
  }
})();
