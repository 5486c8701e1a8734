// The constrained generation every runtime runs (e2e.mjs, the browser's worker): greedy under a
// JSON Schema and under a regex, each text checked here by hand. Greedy, so every runtime gives
// the same texts (run-all.mjs compares them).
const SCHEMA = {
  type: 'object',
  properties: {
    colour: { enum: ['red', 'green', 'blue'] },
    count: { type: 'integer', minimum: 1, maximum: 12 },
    label: { type: 'string', maxLength: 8 },
  },
  required: ['colour', 'count', 'label'],
  additionalProperties: false,
};
const REGEX = '[A-Z]{2}-[0-9]{3}';

/** The two texts, and whether each is what its constraint says. */
export async function constrainedCase(phi) {
  const json = await phi.complete('Alice: A record, please.\nBob:', {
    jsonSchema: SCHEMA,
    constraintLeadingSpace: true,
    maxNewTokens: 48,
  });
  const regex = await phi.complete('Code:', { regex: REGEX, maxNewTokens: 16 });
  let valid = json.stopReason === 'eos' && new RegExp(`^${REGEX}$`).test(regex.text);
  try {
    const v = JSON.parse(json.text);
    valid &&=
      Object.keys(v).join() === 'colour,count,label' &&
      SCHEMA.properties.colour.enum.includes(v.colour) &&
      Number.isInteger(v.count) &&
      v.count >= 1 &&
      v.count <= 12 &&
      typeof v.label === 'string' &&
      [...v.label].length <= 8;
  } catch {
    valid = false;
  }
  return { json: json.text, regex: regex.text, valid };
}
