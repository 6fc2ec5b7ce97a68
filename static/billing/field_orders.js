// The sheets' Print button: shown only when scripts run (the browser's own Print
// works without it). A file, not an inline handler: the CSP allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("field-orders-print");
  if (button) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
});
