"use strict";
(() => {
  const KEY = "llmesh-admin-token";
  const POLL_MS = 3000;
  const HINTS = ["wnam", "enam", "weur", "eeur", "apac", "oc", "afr", "sam", "me"];
  const WARN_DAYS = 14;
  const $ = (id) => document.getElementById(id);
  // Every value below comes from gossip: it only ever reaches the page as
  // text (textContent), never as markup.
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const str = (v) => (typeof v === "string" ? v : "");
  if (location.hash.startsWith("#token=")) {
    sessionStorage.setItem(KEY, decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, "", location.pathname + location.search);
  }
  let timer;
  const schedule = () => { clearTimeout(timer); timer = setTimeout(poll, POLL_MS); };

  async function poll() {
    try {
      const token = sessionStorage.getItem(KEY);
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const r = await fetch("members?state=alive,dead", { headers, cache: "no-store", credentials: "omit" });
      if (r.status === 401) {
        showAuth(token ? "The node refused this token." : "");
      } else if (!r.ok) {
        throw new Error("/members answered " + r.status);
      } else {
        const data = await r.json();
        $("auth").hidden = true;
        $("error").hidden = true;
        render(data);
      }
    } catch (e) {
      $("error").textContent = "Cannot read /members: " + (e && e.message ? e.message : e);
      $("error").hidden = false;
    }
    schedule();
  }

  function showAuth(msg) {
    $("auth").hidden = false;
    $("autherr").textContent = msg;
  }
  $("save").addEventListener("click", () => {
    sessionStorage.setItem(KEY, $("token").value);
    $("token").value = "";
    poll();
  });
  $("token").addEventListener("keydown", (e) => { if (e.key === "Enter") $("save").click(); });

  function stateOf(m) {
    if (m.state === "alive") return m.draining ? "draining" : "alive";
    return m.state === "dead" || m.state === "left" ? m.state : "unknown";
  }

  function expiry(iso) {
    if (!iso) return ["–", "muted"];
    const t = Date.parse(str(iso));
    if (isNaN(t)) return ["?", "bad"];
    const days = Math.floor((t - Date.now()) / 86400000);
    const cls = days < 0 ? "bad" : days < WARN_DAYS ? "warn" : "";
    return [new Date(t).toISOString().slice(0, 10) + " (" + days + " d)", cls];
  }

  function render(data) {
    const self = data.node || {};
    const members = Array.isArray(data.members) ? data.members : [];
    const me = members.find((m) => m.name === self.name) || {};
    $("self").textContent = "· " + str(self.name) + (me.role ? " (" + str(me.role) + ")" : "");
    const count = new Map();
    for (const m of members) count.set(stateOf(m), (count.get(stateOf(m)) || 0) + 1);
    $("summary").textContent = members.length + " nodes: " + (count.get("alive") || 0) + " alive, " +
      (count.get("draining") || 0) + " draining, " + (count.get("dead") || 0) + " dead · updated " +
      new Date().toLocaleTimeString();
    renderRouting(self.routing, me);
    renderGroups(members, self);
  }

  function renderRouting(rt, me) {
    const box = $("routing");
    box.replaceChildren(el("h2", "", "Routing"));
    if (!rt) {
      box.append(el("p", "muted", "This node has no routing rules (an egress): ingress nodes send it the requests whose rules name hint " +
        (str(me.hint) || "–") + "."));
      return;
    }
    box.append(el("p", "muted", "The rules of this ingress: requests at an ingress in these locations leave through an egress of that hint; " +
      "other locations go direct to the provider."));
    const rules = Array.isArray(rt.rules) ? rt.rules : [];
    if (rules.length === 0) box.lastChild.textContent = "This ingress has no rules: every request goes direct to the provider.";
    const table = el("table");
    const head = el("tr");
    for (const h of ["Locations", "Egress hint", ""]) head.append(el("th", "", h));
    table.append(head);
    for (const r of rules) {
      const locs = Array.isArray(r.locs) ? r.locs.map(str) : [];
      const tr = el("tr");
      tr.append(el("td", "", locs.join(", ")), el("td", "", str(r.hint)),
        el("td", "muted", locs.includes(me.loc) ? "applies to this node (" + str(me.loc) + ")" : ""));
      table.append(tr);
    }
    if (rules.length) box.append(table);
    const notes = ["No live egress for the hint: " + str(rt.fallback) + "."];
    if (rt.allow_client_hint) notes.push("Clients may pick a hint with X-Mesh-Hint.");
    if (rt.on_region_block) notes.push("Requests a provider refuses for this region retry through " + str(rt.on_region_block) + ".");
    box.append(el("p", "muted", notes.join(" ")));
  }

  function renderGroups(members, self) {
    const groups = new Map();
    for (const m of members) {
      const h = str(m.hint);
      if (!groups.has(h)) groups.set(h, []);
      groups.get(h).push(m);
    }
    const order = [...groups.keys()].sort((a, b) => {
      const ia = HINTS.indexOf(a), ib = HINTS.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a === "") - (b === "") || (a < b ? -1 : a > b);
    });
    const out = [];
    for (const hint of order) {
      const list = groups.get(hint);
      const sec = el("section");
      sec.dataset.hint = hint;
      const h2 = el("h2", "", hint || "no hint");
      h2.append(" ", el("small", "", list.length + (list.length === 1 ? " node" : " nodes")));
      sec.append(h2);
      const table = el("table", "nodes");
      const head = el("tr");
      for (const h of ["Node", "Role", "Location", "State", "In flight", "Version", "Certificate expires", "Address"]) head.append(el("th", "", h));
      table.append(head);
      for (const m of list) {
        const isSelf = m.name === self.name;
        const tr = el("tr", isSelf ? "self" : "");
        tr.dataset.node = str(m.name);
        const st = stateOf(m);
        const [exp, expCls] = expiry(m.cert_expiry);
        const loc = str(m.loc) + (m.colo ? " / " + str(m.colo) : "");
        tr.append(
          el("td", "", str(m.name) + (isSelf ? " (this node)" : "")),
          el("td", "", str(m.role)),
          el("td", "", loc || "–"),
          el("td", st, st),
          el("td", isSelf ? "" : "muted", isSelf ? Number(self.in_flight) || 0 : "–"),
          el("td", "", str(m.version) || "–"),
          el("td", expCls, exp),
          el("td", "muted", str(m.tunnel) || str(m.addr)),
        );
        table.append(tr);
      }
      sec.append(table);
      out.push(sec);
    }
    $("groups").replaceChildren(...out);
  }

  poll();
})();
