import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactStoreUrl } from './index.js';

test('redactStoreUrl hides passwords in the authority and in a password= parameter, and nothing else', () => {
  assert.equal(redactStoreUrl('postgres://app:s3cret@db.example:5432/portcullis'), 'postgres://app:…@db.example:5432/portcullis');
  assert.equal(redactStoreUrl('postgresql://app:p%40ss@h/db?sslmode=require'), 'postgresql://app:…@h/db?sslmode=require');
  assert.equal(redactStoreUrl('postgres://app@h/db?sslmode=require&password=x1&application_name=a'), 'postgres://app@h/db?sslmode=require&password=…&application_name=a');
  assert.equal(redactStoreUrl('postgres://h/db'), 'postgres://h/db');
  // Unencoded special characters in the password (an invalid URL) are hidden too.
  assert.equal(redactStoreUrl('postgres://app:pa/ss#w@rd@h:5432/db'), 'postgres://app:…@h:5432/db');
  assert.equal(redactStoreUrl('/var/lib/portcullis/portcullis.db'), '/var/lib/portcullis/portcullis.db');
});
