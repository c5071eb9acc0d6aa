// The scheduled jobs of every service, for admins (contract section 8): the list of each service with
// its last run; pause, resume, run now, a new schedule, and the job's runs (newest first, a page at a
// time). The page shows the panel to admins only; the API answers 403 to anyone else whatever the page
// does.
import { button, el, when } from "./dom.js";

export const SERVICES = ["users", "orders", "notification", "realtime"];
// After "Run", the service's list is read again this often until the run has finished (or this many times).
const POLL_MS = 500;
const POLL_TRIES = 60;
// Runs shown per page of a job's history; "More" asks for the next page.
const RUNS_PER_PAGE = 10;
// The API refuses a longer schedule (422); the field stops typing there.
const SCHEDULE_MAX = 200;

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// call(method, path) -> the parsed answer, or throws an Error whose message is the problem's text.
export function createJobsPanel({ call, say, guarded }) {
  const panel = document.getElementById("jobs-panel");
  const list = document.getElementById("jobs");
  // Bumped by hide(): answers that arrive after sign-out are dropped.
  let generation = 0;

  const base = (service) => `/api/v1/admin/jobs/${encodeURIComponent(service)}`;
  const jobPath = (service, name) => `${base(service)}/${encodeURIComponent(name)}`;

  function group(service) {
    return list.querySelector(`[data-service="${service}"]`);
  }

  function lastRun(run) {
    const cell = el("td", null, "last-run");
    if (!run) {
      cell.append(el("span", "never", "muted"));
      return cell;
    }
    cell.append(el("span", run.status, `job-status ${run.status}`), " ", when(run.started_at, "datetime"));
    if (run.detail) cell.append(el("div", run.detail, "muted detail"));
    return cell;
  }

  function row(service, job) {
    const tr = el("tr");
    tr.dataset.job = job.name;
    tr.dataset.paused = String(job.paused);
    tr.dataset.lastRunId = job.last_run ? job.last_run.id : "";
    tr.dataset.lastStatus = job.last_run ? job.last_run.status : "";
    const next = el("td", null, "next-run");
    if (job.paused) next.append(el("span", "paused", "job-paused"));
    else if (job.next_run_at) next.append(when(job.next_run_at, "datetime"));
    tr.append(el("td", job.name, "job-name"), el("td", job.schedule, "schedule"), next, lastRun(job.last_run));

    const toggle = button(job.paused ? "Resume" : "Pause", "quiet");
    toggle.addEventListener("click", guarded(async () => {
      toggle.disabled = true;
      try {
        const changed = await call("POST", `${jobPath(service, job.name)}/${job.paused ? "resume" : "pause"}`);
        tr.replaceWith(row(service, changed));
        say(`${service}/${job.name} ${changed.paused ? "paused" : "resumed"}.`);
      } finally {
        toggle.disabled = false;
      }
    }));
    const reschedule = button("Schedule", "quiet");
    reschedule.addEventListener("click", () => editSchedule(service, job, tr));
    const history = button("History", "quiet");
    history.setAttribute("aria-expanded", "false");
    history.addEventListener("click", guarded(() => toggleHistory(service, job.name, tr, history)));
    const run = button("Run", "quiet");
    run.addEventListener("click", guarded(async () => {
      run.disabled = true;
      try {
        await runNow(service, job.name);
      } finally {
        run.disabled = false;
      }
    }));
    const actions = el("td", null, "actions");
    actions.append(toggle, " ", run, " ", reschedule, " ", history);
    tr.append(actions);
    return tr;
  }

  // The schedule cell becomes a form; the row is drawn again from the API's answer once it is saved.
  // A refused expression (422) says why on the status line and leaves the form as typed.
  function editSchedule(service, job, tr) {
    const cell = tr.querySelector(".schedule");
    if (cell.querySelector("form")) return;
    const form = el("form", null, "reschedule");
    const input = el("input");
    input.name = "schedule";
    input.value = job.schedule;
    input.maxLength = SCHEDULE_MAX;
    input.required = true;
    input.setAttribute("aria-label", `New schedule of ${service}/${job.name}`);
    const save = el("button", "Save", "quiet");
    save.type = "submit";
    const cancel = button("Cancel", "quiet");
    cancel.addEventListener("click", () => cell.replaceChildren(job.schedule));
    form.append(input, " ", save, " ", cancel);
    form.addEventListener("submit", guarded(async () => {
      save.disabled = true;
      try {
        const changed = await call("PUT", `${jobPath(service, job.name)}/schedule`, {
          json: { schedule: input.value },
        });
        closeHistory(tr);
        tr.replaceWith(row(service, changed));
        say(`${service}/${job.name} now runs at ${changed.schedule} (UTC).`);
      } finally {
        save.disabled = false;
      }
    }));
    cell.replaceChildren(form);
    input.focus();
  }

  function closeHistory(tr) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("job-history")) next.remove();
  }

  // A row under the job's own with its runs, newest first; "More" appends the next page.
  async function toggleHistory(service, name, tr, toggle) {
    if (tr.nextElementSibling?.classList.contains("job-history")) {
      closeHistory(tr);
      toggle.setAttribute("aria-expanded", "false");
      return;
    }
    const holder = el("tr", null, "job-history");
    holder.dataset.historyOf = name;
    const cell = el("td");
    cell.colSpan = 5;
    const table = el("table", null, "runs");
    const head = el("tr");
    for (const title of ["Started", "Trigger", "Status", "Finished", "Detail"]) head.append(el("th", title));
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    const more = button("More", "quiet");
    more.hidden = true;
    cell.append(table, more);
    holder.append(cell);

    const started = generation;
    let cursor = null;
    async function page() {
      const query = new URLSearchParams({ limit: String(RUNS_PER_PAGE) });
      if (cursor) query.set("cursor", cursor);
      const answer = await call("GET", `${jobPath(service, name)}/runs?${query}`);
      if (generation !== started) return;
      table.tBodies[0].append(...answer.items.map(runRow));
      if (!table.tBodies[0].children.length) table.tBodies[0].append(emptyRow());
      cursor = answer.next_cursor;
      more.hidden = !cursor;
    }
    more.addEventListener("click", guarded(async () => {
      more.disabled = true;
      try { await page(); } finally { more.disabled = false; }
    }));
    await page();
    if (generation !== started || !tr.isConnected) return;
    closeHistory(tr);
    tr.after(holder);
    toggle.setAttribute("aria-expanded", "true");
  }

  function runRow(run) {
    const tr = el("tr");
    tr.dataset.runId = run.id;
    const finished = el("td");
    if (run.finished_at) finished.append(when(run.finished_at, "datetime"));
    const started = el("td");
    started.append(when(run.started_at, "datetime"));
    tr.append(
      started,
      el("td", run.trigger, "trigger"),
      el("td", run.status, `job-status ${run.status}`),
      finished,
      el("td", run.detail ?? "", "muted detail"),
    );
    return tr;
  }

  function emptyRow() {
    const tr = el("tr");
    const cell = el("td", "no runs in the last 30 days", "muted");
    cell.colSpan = 5;
    tr.append(cell);
    return tr;
  }

  function show(service, answer) {
    const box = group(service);
    if (!box) return;
    box.querySelector(".error").hidden = true;
    box.querySelector("tbody").replaceChildren(...answer.items.map((job) => row(service, job)));
  }

  function fail(service, error) {
    const box = group(service);
    if (!box) return;
    const line = box.querySelector(".error");
    line.textContent = error.message;
    line.hidden = false;
    box.querySelector("tbody").replaceChildren();
  }

  // One service's list; a service that cannot answer says why in its own group, the others still show.
  async function load(service) {
    const started = generation;
    try {
      const answer = await call("GET", base(service));
      if (generation === started) show(service, answer);
      return answer;
    } catch (error) {
      if (generation === started) fail(service, error);
      return null;
    }
  }

  async function runNow(service, name) {
    const { run_id: runId } = await call("POST", `${jobPath(service, name)}/run`);
    say(`${service}/${name}: run ${runId.slice(0, 8)} started.`);
    const started = generation;
    for (let tries = 0; tries < POLL_TRIES && generation === started; tries += 1) {
      await pause(POLL_MS);
      const answer = await load(service);
      const last = answer && answer.items.find((job) => job.name === name)?.last_run;
      if (last && last.id === runId && last.status !== "running") {
        say(`${service}/${name}: run ${runId.slice(0, 8)} ${last.status}.`, last.status === "failed");
        return;
      }
    }
  }

  function skeleton() {
    list.replaceChildren(...SERVICES.map((service) => {
      const box = el("div", null, "jobs-service");
      box.dataset.service = service;
      const table = el("table");
      const head = el("tr");
      for (const title of ["Job", "Schedule", "Next run", "Last run", ""]) head.append(el("th", title));
      table.append(el("thead"), el("tbody"));
      table.tHead.append(head);
      const error = el("p", null, "error");
      error.hidden = true;
      box.append(el("h3", service), error, table);
      return box;
    }));
  }

  return {
    async open() {
      panel.hidden = false;
      if (!list.children.length) skeleton();
      await Promise.all(SERVICES.map(load));
    },
    close() {
      generation += 1;
      panel.hidden = true;
      list.replaceChildren();
    },
  };
}
