// Small enhancements; every page also works without this file.
document.documentElement.classList.add("js");

// Copy the panel's first sample into the Send Test Data box and mark the box
// as following the panel again.
function copySample() {
  const source = document.getElementById("next-sample");
  const sample = document.getElementById("id_sample");
  if (!source || !sample) return;
  sample.value = source.content.textContent;
  delete sample.dataset.edited;
}

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-copy-sample]")) copySample();
});

// Once the user edits the sample, panel updates leave it alone.
document.addEventListener("input", (event) => {
  if (event.target.id === "id_sample") event.target.dataset.edited = "true";
});

// A new panel brings a new sample: take it unless the user edited the box.
document.addEventListener("htmx:load", (event) => {
  if (event.detail.elt.id !== "sample-panel") return;
  const sample = document.getElementById("id_sample");
  if (sample && !sample.dataset.edited) copySample();
});
