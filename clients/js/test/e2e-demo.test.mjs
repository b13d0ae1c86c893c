// End to end in headless Chromium: the example server's demo page (`GET /`), which loads
// the client's modules from the server itself, opened as two users side by side.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers.mjs';
import { BROWSER_WAIT, launch, skipBrowser, waitForUsers } from './browser.mjs';

/** @type {Awaited<ReturnType<typeof startServer>> | undefined} */
let server;
/** @type {Awaited<ReturnType<typeof launch>> | undefined} */
let browser;
/** Uncaught errors of the pages of the current test. */
let pageErrors = [];
let opened = [];

before(async () => {
  server = await startServer();
  if (!skipBrowser) browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.kill();
});

afterEach(async () => {
  for (const page of opened.splice(0)) await page.close().catch(() => {});
  const errors = pageErrors.splice(0);
  assert.deepEqual(errors, [], 'no uncaught errors in the pages');
});

/** The demo page as `user`, once it is connected. */
async function openAs(user) {
  const page = await browser.context.newPage();
  opened.push(page);
  page.on('pageerror', (error) => pageErrors.push(`${user}: ${error.message}`));
  await page.goto(`http://127.0.0.1:${server.port}/?user=${user}`);
  await waitForStatus(page, 'open');
  return page;
}

function waitForStatus(page, state) {
  return page.waitForFunction((state) => document.getElementById('status')?.dataset.state === state, state, {
    timeout: BROWSER_WAIT,
  });
}

/** Adds a book through the page's form and resolves with its id once the page lists it. */
async function addBook(page, title) {
  await page.fill('#new-title', title);
  await page.press('#new-title', 'Enter');
  return bookId(page, title);
}

/** The id of the book titled `title`, once `page` lists it. */
async function bookId(page, title) {
  const handle = await page.waitForFunction(
    (title) => [...document.querySelectorAll('#books > li')].find((li) => li.querySelector('input.title')?.value === title)?.dataset.id,
    title,
    { timeout: BROWSER_WAIT },
  );
  return handle.jsonValue();
}

/** Kills the server (SIGKILL: no close frames) and starts it again on the same port. */
async function restartServer(pages, between = async () => {}) {
  const port = server.port;
  await server.kill();
  for (const page of pages) await waitForStatus(page, 'closed');
  await between();
  server = await startServer({ port });
}

test('the page and the modules are served with their content types', async () => {
  const base = `http://127.0.0.1:${server.port}`;
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  for (const module of ['realtime.js', 'realtime-users.js', 'backbone.js', 'msgpack.js']) {
    const response = await fetch(`${base}/${module}`);
    assert.equal(response.status, 200, module);
    assert.match(response.headers.get('content-type'), /^text\/javascript/, module);
  }
});

test('two pages see each other in <realtime-users>', { skip: skipBrowser }, async () => {
  const ada = await openAs('ada');
  const grace = await openAs('grace');
  await waitForUsers(ada, 'books', ['u:ada', 'u:grace']);
  await waitForUsers(grace, 'books', ['u:ada', 'u:grace']);
  // The page's own entry is marked as "you".
  const you = await ada.evaluate(
    () => document.querySelector('realtime-users[key="books"]').shadowRoot.querySelector('li[aria-current="true"]')?.dataset.key,
  );
  assert.equal(you, 'u:ada');
});

test('an edit in one page appears in the other, with presence per book', { skip: skipBrowser }, async () => {
  const ada = await openAs('ada');
  const grace = await openAs('grace');
  const id = await addBook(ada, 'Dune');
  assert.equal(await bookId(grace, 'Dune'), id);
  await waitForUsers(ada, `book-${id}`, ['u:ada', 'u:grace']);
  await waitForUsers(grace, `book-${id}`, ['u:ada', 'u:grace']);

  const title = ada.locator(`#books > li[data-id="${id}"] input.title`);
  await title.fill('Dune Messiah');
  await title.blur(); // `change`: the update is sent
  await grace.waitForFunction(
    (id) => document.querySelector(`#books > li[data-id="${id}"] input.title`)?.value === 'Dune Messiah',
    id,
    { timeout: BROWSER_WAIT },
  );
});

test('removing the element closes the view for the other page', { skip: skipBrowser }, async () => {
  const ada = await openAs('ada');
  const grace = await openAs('grace');
  const id = await addBook(ada, 'Solaris');
  await bookId(grace, 'Solaris');
  await waitForUsers(grace, `book-${id}`, ['u:ada', 'u:grace']);

  await ada.evaluate((id) => document.querySelector(`realtime-users[key="book-${id}"]`).remove(), id);
  await waitForUsers(grace, `book-${id}`, ['u:grace']);
  // Only that view: ada still looks at the page.
  await waitForUsers(grace, 'books', ['u:ada', 'u:grace']);
});

test('both pages recover after the server restarts', { skip: skipBrowser }, async () => {
  const ada = await openAs('ada');
  const grace = await openAs('grace');
  await waitForUsers(grace, 'books', ['u:ada', 'u:grace']);

  await restartServer([ada, grace]);
  await waitForStatus(ada, 'open');
  await waitForStatus(grace, 'open');
  // The views are opened again on the new server...
  await waitForUsers(ada, 'books', ['u:ada', 'u:grace']);
  await waitForUsers(grace, 'books', ['u:ada', 'u:grace']);
  // ...and the collection is followed again: its books were in the old server's memory.
  await grace.waitForFunction(() => document.querySelectorAll('#books > li').length === 0, null, { timeout: BROWSER_WAIT });
  const id = await addBook(grace, 'After the restart');
  assert.equal(await bookId(ada, 'After the restart'), id);
});

test('a book added while the server is down is sent once it is back', { skip: skipBrowser }, async () => {
  const ada = await openAs('ada');
  const grace = await openAs('grace');
  await waitForUsers(grace, 'books', ['u:ada', 'u:grace']);

  await restartServer([ada, grace], async () => {
    // Offline: the create waits in ada's queue.
    await ada.fill('#new-title', 'Written offline');
    await ada.press('#new-title', 'Enter');
    assert.equal(await ada.evaluate(() => window.demo.client.connected), false);
  });
  await waitForStatus(ada, 'open');
  await bookId(grace, 'Written offline');
  await bookId(ada, 'Written offline');
});
