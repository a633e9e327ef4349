// The message page's charts (uPlot, from Mail Ape's static files): copies sent per
// second, and each outcome's copies added up over time; the table below them says the
// same in words. Redrawn from the timeline URL while the message is going out.
(function () {
  const holder = document.getElementById("delivery-charts");
  if (!holder || typeof uPlot === "undefined") return;
  const section = document.getElementById("delivery");
  const tableBody = document.querySelector("#timeline-table tbody");
  const REFRESH_MS = 3000;
  const HEIGHT = 160;
  let charts = null;
  let unitSeconds = 1;

  function columns(timeline) {
    const times = [], rate = [], sent = [], failed = [], bounced = [];
    let sentSoFar = 0, failedSoFar = 0, bouncedSoFar = 0;
    for (const [start, sentNow, failedNow, bouncedNow] of timeline.points) {
      times.push(start);
      rate.push(sentNow / timeline.unit_seconds);
      sent.push(sentSoFar += sentNow);
      failed.push(failedSoFar += failedNow);
      bounced.push(bouncedSoFar += bouncedNow);
    }
    // A chart of one bucket has no width: the next, empty bucket gives it one.
    if (times.length === 1) {
      times.push(times[0] + timeline.unit_seconds);
      rate.push(0);
      sent.push(sentSoFar);
      failed.push(failedSoFar);
      bounced.push(bouncedSoFar);
    }
    return {rate: [times, rate], mix: [times, sent, failed, bounced]};
  }

  function options(element, series) {
    return {
      width: element.clientWidth,
      height: HEIGHT,
      legend: {show: true},
      // Counts start at nought, so that bars and lines keep their proportions.
      scales: {
        // Half a bucket either side, so that the first and last bars are whole.
        x: {time: true, range: (chart, low, high) => [low - unitSeconds / 2, high + unitSeconds / 2]},
        y: {range: (chart, low, high) => [0, Math.max(high, 1) * 1.1]},
      },
      series: [{label: holder.dataset.timeLabel}, ...series],
    };
  }

  function makeCharts(data) {
    const rateElement = document.getElementById("rate-chart");
    const mixElement = document.getElementById("mix-chart");
    return {
      rate: new uPlot(options(rateElement, [
        {label: holder.dataset.rateLabel, stroke: "#0d6efd", fill: "rgba(13,110,253,0.35)", paths: uPlot.paths.bars({size: [0.8, 48]}), points: {show: false}},
      ]), data.rate, rateElement),
      mix: new uPlot(options(mixElement, [
        {label: holder.dataset.sentLabel, stroke: "#198754", fill: "rgba(25,135,84,0.15)", points: {show: false}},
        {label: holder.dataset.failedLabel, stroke: "#dc3545", points: {show: false}},
        {label: holder.dataset.bouncedLabel, stroke: "#fd7e14", points: {show: false}},
      ]), data.mix, mixElement),
    };
  }

  function fillTable(timeline) {
    const rows = timeline.points.map(([start, sentNow, failedNow, bouncedNow]) => {
      const row = document.createElement("tr");
      const cells = [
        new Date(start * 1000).toLocaleString(),
        sentNow, failedNow, bouncedNow,
        (sentNow / timeline.unit_seconds).toFixed(1),
      ];
      for (const value of cells) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    });
    tableBody.replaceChildren(...rows);
  }

  function draw(timeline) {
    unitSeconds = timeline.unit_seconds;
    const data = columns(timeline);
    if (charts === null) {
      charts = makeCharts(data);
    } else {
      charts.rate.setData(data.rate);
      charts.mix.setData(data.mix);
    }
    fillTable(timeline);
  }

  async function refresh() {
    const response = await fetch(holder.dataset.timelineUrl, {credentials: "same-origin"});
    if (response.ok) draw(await response.json());
    setTimeout(refresh, REFRESH_MS);
  }

  window.addEventListener("resize", () => {
    if (charts === null) return;
    for (const [name, chart] of Object.entries(charts)) {
      chart.setSize({width: document.getElementById(name + "-chart").clientWidth, height: HEIGHT});
    }
  });

  draw(JSON.parse(document.getElementById("delivery-timeline").textContent));
  if (!("final" in section.dataset)) setTimeout(refresh, REFRESH_MS);
})();
