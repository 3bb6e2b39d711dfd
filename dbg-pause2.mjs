const url = process.argv[2];
const ws = new WebSocket(url);
let id = 0;
const pending = new Map();
const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
const scripts = new Map();
ws.onopen = async () => { await send("Debugger.enable"); await send("Debugger.setAsyncCallStackDepth", { maxDepth: 16 }); setTimeout(() => send("Debugger.pause"), 300); };
let n = 0;
ws.onmessage = async (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg.result); pending.delete(msg.id); return; }
  if (msg.method === "Debugger.scriptParsed") scripts.set(msg.params.scriptId, msg.params.url);
  if (msg.method === "Debugger.paused") {
    n++;
    console.log(`--- pause ${n}`);
    for (const f of msg.params.callFrames.slice(0, 6)) {
      const src = (await send("Debugger.getScriptSource", { scriptId: f.location.scriptId })).scriptSource.split("\n");
      console.log(`${f.functionName || "(anon)"} ${scripts.get(f.location.scriptId)} :${f.location.lineNumber + 1}`);
      console.log(src.slice(Math.max(0, f.location.lineNumber - 3), f.location.lineNumber + 2).map((l) => "    | " + l.slice(0, 160)).join("\n"));
    }
    let a = msg.params.asyncStackTrace; let d = 0;
    while (a && d < 8) { console.log(`  async ${a.description}: ${a.callFrames.slice(0, 4).map((f) => `${f.functionName}@${f.url.replace(/.*node_modules\//, "").replace(/.*wt-g\//, "")}:${f.lineNumber + 1}`).join(" < ")}`); a = a.parent; d++; }
    await send("Debugger.resume");
    if (n < 2) setTimeout(() => send("Debugger.pause"), 1500); else setTimeout(() => process.exit(0), 200);
  }
};
setTimeout(() => process.exit(1), 25000);
