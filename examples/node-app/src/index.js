// The app: one dependency (ms, from the dependencies layer) and a line to show it ran.
const ms = require("ms");
console.log(`node-app up, the cache keeps layers for ${ms(7 * 24 * 3600 * 1000, { long: true })}`);
