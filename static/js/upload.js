// Folder uploads: Django keeps only the last part of an uploaded file's name, so this fills
// the hidden "paths" field with one path per chosen file, in the order the server reads them
// (the "files" input, then the "folder" input). A folder's own name is dropped: its files
// land at the top of the version. Without this script each file keeps its plain name.
// It also warns before sending more than the server accepts.
(function () {
  "use strict";
  var INPUTS = ["files", "folder"];

  function chosen(form) {
    var list = [];
    INPUTS.forEach(function (name) {
      var input = form.querySelector('input[type=file][name="' + name + '"]');
      if (!input || !input.files) return;
      for (var i = 0; i < input.files.length; i++) {
        var file = input.files[i];
        var path = file.name;
        if (name === "folder" && file.webkitRelativePath) {
          path = file.webkitRelativePath.split("/").slice(1).join("/") || file.name;
        }
        list.push({ path: path, size: file.size });
      }
    });
    return list;
  }

  function formatBytes(n) {
    var units = ["bytes", "KB", "MB", "GB", "TB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  function refresh(form) {
    var files = chosen(form);
    var paths = form.querySelector("[data-paths]");
    if (paths) paths.value = files.map(function (f) { return f.path; }).join("\n");
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0);
    var summary = form.querySelector("[data-upload-summary]");
    var limit = parseInt(form.getAttribute("data-max-bytes"), 10);
    if (summary && files.length) {
      summary.textContent = files.length + " file(s), " + formatBytes(total) +
        (limit ? " of at most " + formatBytes(limit) + " per upload." : ".");
      summary.classList.toggle("error", Boolean(limit && total > limit));
    }
    return { total: total, limit: limit };
  }

  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    refresh(form);  // the browser may have kept the chosen files (back button)
    form.addEventListener("change", function (event) {
      if (event.target.type === "file") refresh(form);
    });
    form.addEventListener("submit", function (event) {
      var state = refresh(form);
      if (state.limit && state.total > state.limit) {
        event.preventDefault();
        window.alert("These files add up to " + formatBytes(state.total) +
          ", more than the " + formatBytes(state.limit) + " one upload may carry.");
        return;
      }
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.dataset.label = button.textContent;
        button.disabled = true;
        button.textContent = "Uploading…";
      }
    });
  });
  // Coming back to the page from the browser's history: make the button usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-upload] button[data-label]").forEach(function (b) {
      b.disabled = false;
      b.textContent = b.dataset.label;
    });
  });
})();
