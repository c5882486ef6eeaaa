/** Writes schema/message.v1.json, the JSON Schema of the message contract, for producers. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { messageJsonSchemaText } from '../functions/shared/message/json-schema.ts';

mkdirSync('schema', { recursive: true });
writeFileSync('schema/message.v1.json', messageJsonSchemaText());
console.log('wrote schema/message.v1.json');
