/**
 * Renders a templated message where it is sent, so every producer gets the same result: in `deliver`,
 * while the idempotency claim is written, right before the SMTP transaction. A delivery of a message
 * already sent is answered as a duplicate whatever its rendering did, so a template changed since never
 * turns a duplicate into a failure; a message not sent yet renders with the template as it is when it
 * is sent.
 */
import { MailerError } from '../errors.ts';
import type { MailMessage } from '../message/schema.ts';
import {
  type Admitted,
  type MessageSender,
  type SentMessage,
  withUnconfirmedTemplate,
} from '../smtp/message-sender.ts';
import { renderTemplate } from './render.ts';
import type { TemplateCache } from './template-cache.ts';

/**
 * The message with its template rendered into subject, text and html (a message without one unchanged),
 * and the version that rendered it.
 * @example
 * const { message: rendered, template } = await renderMessage(message, templates); // template: { name: 'welcome', version: 3 }
 */
export async function renderMessage(
  message: MailMessage,
  templates: Pick<TemplateCache, 'resolve'> | undefined,
): Promise<{ message: MailMessage; template?: { name: string; version: number } }> {
  if (!message.template) return { message };
  if (!templates)
    throw new MailerError('TEMPLATE_UNKNOWN', 'this deployment keeps no templates (no template table)', {
      template: message.template.name,
    });
  const compiled = await templates.resolve(message.template.name, message.template.version);
  const { template: _template, templateData, ...rest } = message;
  const rendered = renderTemplate(compiled, templateData ?? {});
  return {
    message: { ...rest, ...rendered },
    template: { name: compiled.name, version: compiled.version },
  };
}

/** A MessageSender whose deliver renders first; what it sent records the template version. */
export class RenderingSender implements Pick<MessageSender, 'admit' | 'deliver'> {
  readonly #sender: Pick<MessageSender, 'admit' | 'deliver'>;
  readonly #templates: Pick<TemplateCache, 'resolve'> | undefined;

  constructor(sender: Pick<MessageSender, 'admit' | 'deliver'>, templates?: Pick<TemplateCache, 'resolve'>) {
    this.#sender = sender;
    this.#templates = templates;
  }

  admit(message: MailMessage, only?: readonly string[], ticket?: string): Promise<Admitted> {
    return this.#sender.admit(message, only, ticket);
  }

  async deliver(
    admitted: Admitted,
    message: MailMessage,
    idempotencyKey: string,
    messageIdKey?: string,
    bodyHeldUntil?: Promise<void>,
  ): Promise<SentMessage> {
    const { message: rendered, template } = await renderMessage(message, this.#templates);
    try {
      const sent = await this.#sender.deliver(
        admitted,
        rendered,
        idempotencyKey,
        messageIdKey,
        bodyHeldUntil,
      );
      return template ? { ...sent, template } : sent;
    } catch (error) {
      // A send that may have been taken keeps its version: found later, its copies render the same.
      withUnconfirmedTemplate(error, template);
      throw error;
    }
  }
}
