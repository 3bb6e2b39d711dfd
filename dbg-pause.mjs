const url = process.argv[2];
const ws = new WebSocket(url);
let id = 0;
const send = (method, params = {}) => ws.send(JSON.stringify({ id: ++id, method, params }));
let n = 0;
ws.onopen = () => { send("Debugger.enable"); setTimeout(() => send("Debugger.pause"), 300); };
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.method === "Debugger.paused") {
    n++;
    console.log(`--- pause ${n}`);
    for (const f of msg.params.callFrames.slice(0, 25)) console.log(`${f.functionName || "(anon)"}  ${f.url.replace(/.*node_modules\//, "").replace(/.*wt-g\//, "")}:${f.location.lineNumber + 1}`);
    send("Debugger.resume");
    if (n < 3) setTimeout(() => send("Debugger.pause"), 1500); else setTimeout(() => { send("Debugger.disable"); setTimeout(() => process.exit(0), 200); }, 100);
  }
};
setTimeout(() => process.exit(1), 20000);
