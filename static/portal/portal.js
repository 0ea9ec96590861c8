// The portal's small behaviours, bound from data attributes: the Content-Security-Policy allows no inline
// event handlers. <select data-autosubmit> submits its form when changed; <form data-confirm="question">
// asks before it is submitted.
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.submit();
});
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
