(function () {
  "use strict";
  var button = document.getElementById("copy");
  var snippet = document.getElementById("snippet");
  var status = document.getElementById("copied");
  if (!button || !snippet || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(snippet.value).then(function () {
      status.textContent = "Copied.";
    }, function () {
      snippet.select();
      status.textContent = "Select the code and copy it.";
    });
  });
}());
