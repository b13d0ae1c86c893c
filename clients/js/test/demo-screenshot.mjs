// Takes docs/demo.png: the example server's demo page as seen by ada, with grace on the
// same page and on one book. Run: node test/demo-screenshot.mjs (REALTIME_SERVER_BIN as
// for the tests; Debian's chromium as for the browser tests).
import { fileURLToPath } from 'node:url';
import { startServer } from './helpers.mjs';
import { BROWSER_WAIT, launch, skipBrowser, waitForUsers } from './browser.mjs';

if (skipBrowser) {
  console.error(skipBrowser);
  process.exit(1);
}
const output = fileURLToPath(new URL('../../../docs/demo.png', import.meta.url));
const server = await startServer();
const browser = await launch({ viewport: { width: 640, height: 420 } });
try {
  const open = async (user) => {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${server.port}/?user=${user}`);
    await page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'open', null, { timeout: BROWSER_WAIT });
    return page;
  };
  const ada = await open('ada');
  const grace = await open('grace');
  for (const title of ['Dune', 'The Left Hand of Darkness', 'Solaris']) {
    await ada.fill('#new-title', title);
    await ada.press('#new-title', 'Enter');
    await grace.waitForFunction((title) => [...document.querySelectorAll('input.title')].some((i) => i.value === title), title, { timeout: BROWSER_WAIT });
  }
  // grace stops looking at the last book: only ada is left on it.
  await grace.evaluate(() => [...document.querySelectorAll('#books realtime-users')].at(-1).remove());
  await waitForUsers(ada, 'books', ['u:ada', 'u:grace']);
  await waitForUsers(ada, 'book-1', ['u:ada', 'u:grace']);
  await waitForUsers(ada, 'book-3', ['u:ada']);
  await ada.locator('#new-title').blur();
  await ada.locator('main').screenshot({ path: output });
  console.log(`wrote ${output}`);
} finally {
  await browser.close();
  await server.kill();
}
