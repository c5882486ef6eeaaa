/** In the bundle, nodemailer's 2,000-line MIME type registry becomes our short list (see content-types.ts). */
export { contentTypeFor as detectMimeType, extensionFor as detectExtension } from '../content-types.ts';
