// The live progress page: appends each server-sent event to the log and shows the phase.
"use strict";
const root = document.getElementById("progress");
const log = document.getElementById("log");
const phase = document.getElementById("phase");
const src = new EventSource(root.dataset.events);
src.onmessage = (m) => { log.textContent += m.data + "\n"; };
src.addEventListener("phase", (m) => { phase.textContent = m.data; });
src.addEventListener("end", (m) => { phase.textContent = m.data; src.close(); });
