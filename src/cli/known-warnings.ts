/**
 * kafkajs 2.2.4 arms its throttle timer with a negative delay whenever no
 * request is pending (requestQueue's scheduleCheckPendingRequests). Node.js
 * >= 23 then prints a TimeoutNegativeWarning and runs the timer after 1 ms,
 * which is what every older Node.js did silently: the warning is noise, not a
 * fault, and kafkajs has had no release to fix it. The CLI drops exactly that
 * warning and prints every other one as Node.js would.
 */
const defaultListeners = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.name === "TimeoutNegativeWarning") return;
  for (const listener of defaultListeners) listener(warning);
});
