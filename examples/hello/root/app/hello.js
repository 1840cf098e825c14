// Runs in the image: prints the greeting the image's config sets, and where it runs.
const greeting = process.env.GREETING ?? "hello";
console.log(`${greeting} (node ${process.version} on ${process.platform}/${process.arch})`);
