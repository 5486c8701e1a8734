// Structured output in a request: OpenAI's response_format (json_object, json_schema) and
// forced tool calls, llama-server's grammar (GBNF) and json_schema. Each becomes one
// constraint on the generation (src/grammar/). What cannot be honoured is a 400 naming the
// field, never ignored: tool_choice "auto" (a base model cannot decide when to call), a
// schema keyword the grammar would not enforce, two constraints at once.
import { constraintOf, ConstraintError, type ConstraintOptions } from '../grammar/constraint.js';
import { badField, shown } from './errors.js';

type Json = Record<string, unknown>;

const present = (v: unknown) => v !== undefined && v !== null;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A forced tool call: the one tool named, or (tool_choice "required" over several) any of them. */
export interface ToolCall {
  /** The tool the output is the arguments of; null: the output is {"name": ..., "arguments": ...}. */
  name: string | null;
}

export interface Structured {
  constraint: ConstraintOptions;
  /** The request field the constraint came from: a 400 for it names this. */
  field: string;
  tool: ToolCall | null;
}

/** The function tools of a request, checked: name -> parameters schema. */
function toolsOf(b: Json): Map<string, unknown> {
  const tools = new Map<string, unknown>();
  if (!Array.isArray(b.tools))
    throw badField('tools', 'must be an array of {type: "function", function}');
  b.tools.forEach((t: unknown, i) => {
    const where = `tools[${i}]`;
    if (!isObject(t) || t.type !== 'function')
      throw badField(
        `${where}.type`,
        `only "function" tools are supported, got ${shown(isObject(t) ? t.type : t)}`,
      );
    const f = t.function;
    if (!isObject(f) || typeof f.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(f.name))
      throw badField(`${where}.function.name`, 'must be 1-64 letters, digits, _ or -');
    if (tools.has(f.name))
      throw badField(`${where}.function.name`, `${shown(f.name)} is given twice`);
    if (present(f.parameters) && !isObject(f.parameters))
      throw badField(`${where}.function.parameters`, 'must be a JSON Schema object');
    // no parameters: a function that takes none
    tools.set(
      f.name,
      f.parameters ?? { type: 'object', properties: {}, additionalProperties: false },
    );
  });
  return tools;
}

/** The constraint a forced tool call puts on the output. */
function toolCall(b: Json): Structured | null {
  const none = !present(b.tools) || (Array.isArray(b.tools) && b.tools.length === 0);
  const choice = b.tool_choice;
  if (none) {
    if (present(choice) && choice !== 'none')
      throw badField('tool_choice', `needs tools to choose from, got ${shown(choice)}`);
    return null;
  }
  const tools = toolsOf(b);
  if (choice === 'none') return null; // tools given but not to be called: plain text
  if (!present(choice) || choice === 'auto')
    throw badField(
      'tool_choice',
      `${present(choice) ? '"auto"' : 'the default, "auto",'} is not supported: a base model cannot ` +
        'decide when to call a tool. Force a call with "required" or {"type": "function", "function": {"name": ...}}',
    );
  let name: string | null;
  if (choice === 'required') name = tools.size === 1 ? [...tools.keys()][0] : null;
  else if (isObject(choice) && choice.type === 'function' && isObject(choice.function)) {
    name = choice.function.name as string;
    if (!tools.has(name))
      throw badField(
        'tool_choice.function.name',
        `${shown(name)} is not one of the tools (${[...tools.keys()].join(', ')})`,
      );
  } else
    throw badField(
      'tool_choice',
      `must be "none", "required" or {"type": "function", "function": {"name": ...}}, got ${shown(choice)}`,
    );
  if (name !== null) {
    const i = [...tools.keys()].indexOf(name);
    return {
      constraint: { jsonSchema: tools.get(name) as Json },
      field: `tools[${i}].function.parameters`,
      tool: { name },
    };
  }
  // any of several: the output names the tool and carries its arguments
  const anyOf = [...tools].map(([n, parameters]) => ({
    type: 'object',
    properties: { name: { const: n }, arguments: parameters },
    required: ['name', 'arguments'],
    additionalProperties: false,
  }));
  return { constraint: { jsonSchema: { anyOf } }, field: 'tools', tool: { name: null } };
}

/** OpenAI's response_format, as a constraint (null for text). */
function responseFormat(b: Json): Structured | null {
  const rf = b.response_format;
  if (!present(rf)) return null;
  const type = isObject(rf) ? rf.type : undefined;
  if (type === 'text') return null;
  if (type === 'json_object')
    return { constraint: { json: true }, field: 'response_format', tool: null };
  if (type === 'json_schema') {
    const js = (rf as Json).json_schema;
    if (!isObject(js))
      throw badField('response_format.json_schema', 'must be an object {name, schema, strict}');
    if (present(js.name) && typeof js.name !== 'string')
      throw badField('response_format.json_schema.name', 'must be a string');
    if (present(js.strict) && typeof js.strict !== 'boolean')
      throw badField('response_format.json_schema.strict', 'must be true or false');
    if (!isObject(js.schema) && typeof js.schema !== 'boolean')
      throw badField('response_format.json_schema.schema', 'must be a JSON Schema object');
    // strict or not, the output is held to the schema (strictly: no properties it does not name)
    return {
      constraint: { jsonSchema: js.schema as Json },
      field: 'response_format.json_schema.schema',
      tool: null,
    };
  }
  throw badField(
    'response_format',
    `must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}, got ${shown(isObject(rf) ? rf.type : rf)}`,
  );
}

/** llama-server's grammar (GBNF text) and json_schema (a schema object). */
function llamaServer(b: Json): Structured | null {
  const given = ['grammar', 'json_schema'].filter((f) => present(b[f]));
  if (given.length > 1) throw badField(given[1], `give grammar or json_schema, not both`);
  if (given[0] === 'grammar') {
    if (typeof b.grammar !== 'string' || !b.grammar.trim())
      throw badField('grammar', 'must be a GBNF grammar (text)');
    return { constraint: { grammar: b.grammar }, field: 'grammar', tool: null };
  }
  if (given[0] === 'json_schema') {
    if (!isObject(b.json_schema) && typeof b.json_schema !== 'boolean')
      throw badField('json_schema', 'must be a JSON Schema object');
    return { constraint: { jsonSchema: b.json_schema as Json }, field: 'json_schema', tool: null };
  }
  return null;
}

/**
 * The constraint a request asks for, checked (a schema keyword the grammar cannot honour is a
 * 400 here), or null. Tools are chat's alone.
 */
export function structuredOutput(b: Json, chat: boolean): Structured | null {
  for (const f of ['functions', 'function_call'])
    if (present(b[f]) && !(Array.isArray(b[f]) && b[f].length === 0) && b[f] !== 'none')
      throw badField(f, 'is the deprecated form: use tools and tool_choice');
  if (!chat)
    for (const f of ['tools', 'tool_choice'])
      if (present(b[f])) throw badField(f, 'tools are for /v1/chat/completions');
  const asked = [responseFormat(b), llamaServer(b), chat ? toolCall(b) : null].filter(
    (s): s is Structured => s !== null,
  );
  if (asked.length > 1)
    throw badField(
      asked[1].field,
      `give one constraint: ${asked.map((s) => s.field).join(' and ')} both ask for one`,
    );
  const s = asked[0] ?? null;
  if (s) {
    try {
      constraintOf(s.constraint);
    } catch (e) {
      if (e instanceof ConstraintError) throw badField(s.field, e.detail);
      throw e;
    }
  }
  return s;
}
