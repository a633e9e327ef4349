// The import page: the bar is drawn from the page's figures and, while the file is read
// or imported, it and the counts follow the progress URL; the page reloads when the
// import moves to another state.
(function () {
  const section = document.getElementById("import");
  const bar = document.getElementById("progress-bar");
  const counts = ["added", "updated", "duplicates", "invalid", "suppressed"];

  function draw(progress) {
    if (bar) {
      bar.style.width = progress.percent_done + "%";
      bar.textContent = progress.percent_done + "%";
      bar.parentElement.setAttribute("aria-valuenow", progress.percent_done);
    }
    const rows = document.getElementById("count-rows");
    if (rows) {
      rows.textContent = progress.total_rows
        ? rows.dataset.of.replace("{rows}", progress.rows).replace("{total}", progress.total_rows)
        : progress.rows;
    }
    for (const name of counts) {
      const cell = document.getElementById("count-" + name);
      if (cell) cell.textContent = progress[name];
    }
  }

  async function refresh() {
    const response = await fetch(section.dataset.progressUrl, {credentials: "same-origin"});
    if (response.ok) {
      const progress = await response.json();
      if (progress.status !== section.dataset.status) {
        window.location.reload();
        return;
      }
      draw(progress);
    }
    setTimeout(refresh, 1000);
  }

  if (bar) bar.style.width = bar.parentElement.getAttribute("aria-valuenow") + "%";
  if (!("still" in section.dataset)) setTimeout(refresh, 500);
})();
