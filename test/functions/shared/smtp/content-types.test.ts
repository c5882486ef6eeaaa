import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentTypeFor, extensionFor } from '../../../../functions/shared/smtp/content-types.ts';

describe('smtp: content types of attachments', () => {
  it('follows the extension of common attachments, whatever its case', () => {
    assert.equal(contentTypeFor('invoice.pdf'), 'application/pdf');
    assert.equal(
      contentTypeFor('Report.Q3.XLSX'),
      'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    );
    assert.equal(contentTypeFor('invite.ics'), 'text/calendar');
    assert.equal(contentTypeFor('photo.JPG'), 'image/jpeg');
    assert.equal(contentTypeFor('png'), 'image/png');
  });

  it('sends unknown, missing and prototype-named extensions as application/octet-stream', () => {
    assert.equal(contentTypeFor('data.unknownext'), 'application/octet-stream');
    assert.equal(contentTypeFor('README'), 'application/octet-stream');
    assert.equal(contentTypeFor('trailing.'), 'application/octet-stream');
    assert.equal(contentTypeFor('x.constructor'), 'application/octet-stream');
    assert.equal(contentTypeFor('x.__proto__'), 'application/octet-stream');
  });

  it('names the usual extension of a content type, ignoring parameters, else bin', () => {
    assert.equal(extensionFor('text/html; charset=utf-8'), 'html');
    assert.equal(extensionFor('IMAGE/PNG'), 'png');
    assert.equal(extensionFor('application/x-unheard-of'), 'bin');
  });
});
