// Parses an AsyncAPI document with the official @asyncapi/parser (found through NODE_PATH);
// prints each diagnostic as JSON, one a line; exit 1 when the document does not parse or has
// an error (severity 0).
const { Parser, fromFile } = require("@asyncapi/parser");

(async () => {
  const { document, diagnostics } = await fromFile(new Parser(), process.argv[2]).parse();
  for (const d of diagnostics) {
    console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
  }
  process.exit(document && !diagnostics.some((d) => d.severity === 0) ? 0 : 1);
})();
