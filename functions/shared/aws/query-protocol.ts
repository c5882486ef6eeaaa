/**
 * AWS's query protocol (SNS): the input flattened into a form (`Entries.member.1.Id`,
 * `Attributes.entry.1.Name`), the answer in XML. Reads only what AWS writes: elements and text, lists
 * as `member`s, no attributes.
 */
import type { Protocol } from './aws-client.ts';

export interface QueryShapes {
  /** Input members that are maps (`MessageAttributes`), flattened as `entry.N.Name` and `entry.N.Value`. */
  readonly maps: ReadonlySet<string>;
  /** Output members that are lists, so an empty one reads as [] rather than "". */
  readonly lists: ReadonlySet<string>;
}

export const queryProtocol = (version: string, shapes: QueryShapes): Protocol => ({
  encode(operation, input) {
    const form = new URLSearchParams({ Action: operation, Version: version });
    flatten(form, '', input, shapes.maps);
    return {
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: form.toString(),
    };
  },
  decode: (operation, body) => {
    const result = (readXml(body, shapes.lists) as Record<string, unknown>)?.[`${operation}Response`];
    return (result as Record<string, unknown> | undefined)?.[`${operation}Result`] ?? {};
  },
  error(body) {
    const root = readXml(body, shapes.lists) as { ErrorResponse?: { Error?: Record<string, unknown> } };
    const error = root?.ErrorResponse?.Error;
    return {
      type: typeof error?.Code === 'string' ? error.Code : undefined,
      message: typeof error?.Message === 'string' ? error.Message : undefined,
      fields: {},
    };
  },
});

function flatten(form: URLSearchParams, prefix: string, value: unknown, maps: ReadonlySet<string>): void {
  if (value === undefined || value === null) return;
  const at = (name: string) => (prefix ? `${prefix}.${name}` : name);
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      flatten(form, at(`member.${index + 1}`), item, maps);
    });
  } else if (typeof value === 'object') {
    for (const [name, member] of Object.entries(value)) {
      if (!maps.has(name) || typeof member !== 'object' || member === null) {
        flatten(form, at(name), member, maps);
        continue;
      }
      Object.entries(member).forEach(([key, entry], index) => {
        form.append(`${at(name)}.entry.${index + 1}.Name`, key);
        flatten(form, `${at(name)}.entry.${index + 1}.Value`, entry, maps);
      });
    }
  } else {
    form.append(prefix, String(value));
  }
}

interface XmlNode {
  readonly name: string;
  readonly children: XmlNode[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const decodeEntities = (text: string) =>
  text.replace(/&(#x[\da-f]+|#\d+|\w+);/gi, (whole, entity: string) =>
    entity[0] === '#'
      ? String.fromCodePoint(Number(entity[1] === 'x' ? `0${entity.slice(1)}` : entity.slice(1)))
      : (ENTITIES[entity] ?? whole),
  );

/** The document as plain values: an element with children is an object (a list of `member`s an array), one without its text. */
export function readXml(xml: string, lists: ReadonlySet<string> = new Set()): unknown {
  const root: XmlNode = { name: '', children: [], text: '' };
  const open: XmlNode[] = [root];
  for (const [, closing, name, selfClosing, text] of xml.matchAll(
    /<(\/?)([A-Za-z_][\w.:-]*)[^>]*?(\/?)>|([^<]+)|<[^>]*>/g,
  )) {
    const current = open[open.length - 1]!;
    if (text !== undefined) current.text += text;
    else if (!name)
      continue; // a declaration or comment
    else if (closing) open.length > 1 && open.pop();
    else {
      const node: XmlNode = { name, children: [], text: '' };
      current.children.push(node);
      if (!selfClosing) open.push(node);
    }
  }
  return plainValue(root, lists);
}

function plainValue(node: XmlNode, lists: ReadonlySet<string>): unknown {
  if (
    lists.has(node.name) ||
    (node.children.length > 0 && node.children.every((child) => child.name === 'member'))
  )
    return node.children.map((child) => plainValue(child, lists));
  if (node.children.length === 0) return decodeEntities(node.text);
  return Object.fromEntries(node.children.map((child) => [child.name, plainValue(child, lists)]));
}
