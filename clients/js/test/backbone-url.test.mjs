// Without a path or a url, syncCollection throws, as realtimeSync does (Backbone's own
// "url" error), instead of subscribing to no path, which the server refuses as malformed.
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../realtime.js';
import { realtimeSync, syncCollection } from '../backbone.js';
import { fakeSockets } from './fake-socket.mjs';

test('syncCollection and realtimeSync need a path or a url', () => {
  const client = connect('ws://fake/', { WebSocket: fakeSockets(), startClosed: true });
  const noUrl = { add() {}, remove() {} };
  const emptyUrl = { add() {}, remove() {}, url: () => '' };
  for (const collection of [noUrl, emptyUrl]) {
    assert.throws(() => syncCollection(client, collection), /"url" property or function must be specified/);
  }
  assert.throws(() => realtimeSync(client)('read', { toJSON: () => ({}) }), /"url" property or function must be specified/);
  assert.equal(client.queued, 0, 'nothing was sent');
  const stop = syncCollection(client, noUrl, '/api/books'); // a path is enough
  stop();
  client.close();
});
