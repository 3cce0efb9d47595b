/* Jointcall editor: progressive enhancement only; every page works without this file.
   - live "N of M characters" counters for fields with data-maxchars / data-counter
   - the funder list narrowed to the partner's country (select with data-funder-select)
   - the budget total of inputs marked data-budget */
(function () {
  "use strict";

  function length(text) {
    // Count as the server does: one character per code point, a line break is one character.
    return Array.from(text.replace(/\r\n/g, "\n")).length;
  }

  function updateCounter(field) {
    var counter = document.getElementById(field.getAttribute("data-counter"));
    if (!counter) { return; }
    var limit = parseInt(field.getAttribute("data-maxchars"), 10);
    var n = length(field.value);
    var text = n + " of " + limit + " characters";
    if (n > limit) { text += " (" + (n - limit) + " too many)"; }
    counter.textContent = text;
    counter.classList.toggle("text-danger", n > limit);
  }

  document.querySelectorAll("[data-maxchars][data-counter]").forEach(function (field) {
    field.addEventListener("input", function () { updateCounter(field); });
    updateCounter(field);
  });

  function narrowFunders(countrySelect) {
    var funder = document.getElementById(countrySelect.getAttribute("data-funder-select"));
    if (!funder) { return; }
    var country = countrySelect.value;
    var any = false;
    funder.querySelectorAll("optgroup[data-country]").forEach(function (group) {
      var show = !country || group.getAttribute("data-country") === country;
      group.hidden = !show;
      group.disabled = !show;
      if (show && country) { any = true; }
    });
    var selected = funder.options[funder.selectedIndex];
    if (selected && selected.parentElement && selected.parentElement.disabled) {
      funder.value = "";
    }
    var none = document.getElementById("funder-none");
    if (none) { none.hidden = !country || any; }
  }

  document.querySelectorAll("select[data-funder-select]").forEach(function (countrySelect) {
    countrySelect.addEventListener("change", function () { narrowFunders(countrySelect); });
    narrowFunders(countrySelect);
  });

  var totalOut = document.getElementById("budget-total");
  var amounts = document.querySelectorAll("input[data-budget]");
  function euros(n) {
    return "€" + n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function updateTotal() {
    var total = 0;
    var readable = true;
    amounts.forEach(function (input) {
      var cleaned = input.value.replace(/[\s,'’_€\u00a0\u202f]/g, "");
      if (cleaned === "") { return; }
      if (!/^\d+$/.test(cleaned)) { readable = false; return; }
      total += parseInt(cleaned, 10);
    });
    totalOut.textContent = readable ? euros(total) : "— (check the amounts)";
  }
  if (totalOut && amounts.length) {
    amounts.forEach(function (input) { input.addEventListener("input", updateTotal); });
    updateTotal();
  }
}());
