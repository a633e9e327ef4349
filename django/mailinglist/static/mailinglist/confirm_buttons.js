// A button with data-confirm asks before its form is sent: removing a subscriber
// cannot be undone.
document.addEventListener("submit", function (event) {
  const button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
