// The reports page: asks /api/reports for the table (text) and links its CSV.
const $ = (id) => document.getElementById(id);

function query() {
  const q = new URLSearchParams({ from: $("from").value, to: $("to").value, by: $("by").value });
  return q;
}

async function show(event) {
  event?.preventDefault();
  const q = query();
  $("status").textContent = "…";
  const table = await fetch(`/api/reports?${q}&format=table`, { credentials: "same-origin" });
  const text = await table.text();
  if (!table.ok) {
    $("status").textContent = `${table.status} : ${text}`;
    $("report").textContent = "";
    $("csv").hidden = true;
    return;
  }
  $("status").textContent = "";
  $("report").textContent = text;
  $("csv").href = `/api/reports?${q}&format=csv`;
  $("csv").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const now = new Date();
  const first = new Date(now.getFullYear(), now.getMonth(), 1);
  const day = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  // A link may carry the request (`/reports?from=…&to=…&by=…`): shown at once.
  const asked = new URLSearchParams(location.search);
  $("from").value = asked.get("from") ?? day(first);
  $("to").value = asked.get("to") ?? day(now);
  if (asked.get("by")) $("by").value = asked.get("by");
  $("ask").addEventListener("submit", show);
  if (asked.get("from")) show();
});
