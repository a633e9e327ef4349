// The message page's delivery bar and counts: drawn from the counts in the page, then
// kept up to date from the progress URL until the message reaches a final state.
(function () {
  const section = document.getElementById("delivery");
  const bar = document.getElementById("delivery-bar");
  const parts = bar.querySelectorAll("[data-part]");

  function draw(counts) {
    const total = Number(counts.total) || 0;
    for (const part of parts) {
      const count = Number(counts[part.dataset.part]) || 0;
      part.style.width = (total ? (100 * count) / total : 0) + "%";
      part.setAttribute("aria-valuenow", count);
    }
  }

  function countsInPage() {
    const counts = {total: bar.dataset.total};
    for (const part of parts) counts[part.dataset.part] = part.dataset.count;
    return counts;
  }

  async function refresh() {
    const response = await fetch(section.dataset.progressUrl, {credentials: "same-origin"});
    if (!response.ok) return;
    const progress = await response.json();
    for (const name of ["sent", "pending", "failed", "bounced", "skipped", "suppressed", "total"]) {
      document.getElementById("count-" + name).textContent = progress[name];
    }
    draw(progress);
    bar.setAttribute("aria-label", bar.dataset.label.replace("{percent}", progress.percent_done));
    if (progress.status !== section.dataset.status) {
      window.location.reload();
      return;
    }
    setTimeout(refresh, 1000);
  }

  draw(countsInPage());
  if (!("final" in section.dataset)) setTimeout(refresh, 1000);
})();
