/**
 * JSON Schema validation (ajv, draft 2020-12) against the OpenAPI document's component schemas: the daemon checks
 * request bodies with it (a 400 naming the field), the tests check answers.
 */
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ApiError } from '../http.js';
import { openapi } from './openapi.js';

// ajv is CommonJS: its class is the module (Node) or its default export (bundled)
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ??
  Ajv2020Module) as unknown as typeof Ajv2020Module.default;

const DOC_ID = 'https://hull.invalid/hull/v1/openapi.json';

let ajv: InstanceType<typeof Ajv2020> | undefined;
const compiled = new Map<string, ValidateFunction>();

/** The validator of a component schema (`Instance`, `CreateInstance`, …) or of any schema whose $refs point into it. */
export function validatorOf(schema: string | object): ValidateFunction {
  const key = typeof schema === 'string' ? schema : JSON.stringify(schema);
  const v = compiled.get(key);
  if (!v) {
    if (!ajv) {
      // strict off: the document's OpenAPI keywords (paths, info…) are not JSON Schema
      ajv = new Ajv2020({ strict: false, allErrors: false });
      ajv.addSchema(openapi as unknown as object, DOC_ID);
    }
    const fn: ValidateFunction = ajv.compile(
      typeof schema === 'string'
        ? { $ref: `${DOC_ID}#/components/schemas/${schema}` }
        : { $id: `${DOC_ID}-${compiled.size}`, ...resolveRefs(schema) },
    );
    compiled.set(key, fn);
    return fn;
  }
  return v;
}

/** Point the document's local `#/components/…` $refs of a schema taken out of it at the registered document. */
function resolveRefs(s: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(s).replaceAll('"#/components/', `"${DOC_ID}#/components/`));
}

/** ajv's first error as one line: `invalid body.resources.memory: must be integer`. */
export function describeErrors(errors: ErrorObject[] | null | undefined, what = 'body'): string {
  const e = errors?.[0];
  if (!e) return `invalid ${what}`;
  const at = e.instancePath ? `${what}${e.instancePath.replace(/\//g, '.')}` : what;
  const extra =
    e.keyword === 'additionalProperties'
      ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
      : e.keyword === 'enum'
        ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`
        : '';
  return `invalid ${at}: ${e.message ?? 'invalid'}${extra}`;
}

/** A request body checked against a component schema; a 400 when it does not fit. */
export function checkBody<T>(schema: string, body: unknown): T {
  const v = validatorOf(schema);
  if (!v(body)) throw new ApiError(400, describeErrors(v.errors));
  return body as T;
}
