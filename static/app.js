// Small enhancements; every page also works without this file.
document.addEventListener("click", (event) => {
  // Expand a sample request in the panel.
  const toggle = event.target.closest("[data-toggle]");
  if (toggle) {
    const target = document.getElementById(toggle.dataset.toggle);
    if (target) target.hidden = !target.hidden;
  }
});

document.addEventListener("click", (event) => {
  // Copy the panel's first body into the Send Test Data sample.
  if (!event.target.closest("[data-copy-sample]")) return;
  const source = document.getElementById("next-sample");
  const sample = document.getElementById("id_sample");
  if (source && sample) sample.value = source.innerHTML.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&amp;/g, "&");
});
