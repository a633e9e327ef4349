// The message page's progress bar: drawn from the counts in the page, then kept up to
// date from the progress URL until the message reaches a final state.
(function () {
  const section = document.getElementById("delivery");
  const bar = document.getElementById("progress-bar");

  function draw(percent) {
    bar.style.width = percent + "%";
    bar.textContent = percent + "%";
    bar.parentElement.setAttribute("aria-valuenow", percent);
  }

  async function refresh() {
    const response = await fetch(section.dataset.progressUrl, {credentials: "same-origin"});
    if (!response.ok) return;
    const progress = await response.json();
    for (const name of ["sent", "pending", "failed", "bounced", "skipped", "suppressed", "total"]) {
      document.getElementById("count-" + name).textContent = progress[name];
    }
    draw(progress.percent_done);
    if (progress.status !== section.dataset.status) {
      window.location.reload();
      return;
    }
    setTimeout(refresh, 1000);
  }

  draw(bar.parentElement.getAttribute("aria-valuenow"));
  if (!("final" in section.dataset)) setTimeout(refresh, 1000);
})();
