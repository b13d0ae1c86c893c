/**
 * `<realtime-users key="VIEW">`: who else is looking at the same thing.
 *
 * ```html
 * <script type="module" src="/realtime-users.js"></script>
 * <realtime-users key="book-7"></realtime-users>
 * ```
 *
 * While the element is in the document it has view `key` open (presence, PROTOCOL.md
 * section 6) and shows one entry per member: a user with its number of clients (tabs), or
 * an anonymous connection. Removing the element closes the view, so the others see this
 * client leave. With no configuration it connects to the server this module was loaded
 * from (one client shared by every element of the page); the `url` attribute names
 * another server, and the `client` property hands it a client made with `connect()`.
 *
 * Rendering: an accessible list (`<ul>` labelled "Users viewing KEY", each entry with a
 * label saying its clients), unstyled but themeable through CSS parts: `list`, `user`
 * (every entry), `you` (the entry of this connection's own member), `name`, `count`; and
 * the custom properties `--realtime-users-gap` and `--realtime-users-you-weight`. The
 * host's `state` attribute is `connecting`, `open` or `error` (`:host([state=error])`).
 * The `test` attribute also marks the current user visibly ("(you)") and shows every
 * client count, duplicates of the same user included ("×1").
 *
 * @module realtime-users
 */

import { connect } from './realtime.js';

/** @type {Map<string, import('./realtime.js').Client>} shared clients by URL ('' for the default) */
const clients = new Map();

/**
 * The client shared by the elements of a page for `url` (the module's own server when
 * empty).
 * @param {string | null | undefined} url
 * @returns {import('./realtime.js').Client}
 */
export function sharedClient(url) {
  const key = url || '';
  let client = clients.get(key);
  if (!client) clients.set(key, (client = connect(url || undefined)));
  return client;
}

const Base = /** @type {typeof HTMLElement} */ (globalThis.HTMLElement ?? class {});

const STYLE = `:host{display:block}
ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:var(--realtime-users-gap,.25em .75em)}
[part~=you]{font-weight:var(--realtime-users-you-weight,bold)}
[part=count]{margin-inline-start:.25em}`;

/**
 * The `<realtime-users>` element. Attributes: `key` (the view), `url` (the server), `test`
 * (mark the current user visibly and show every count). Property: `client`.
 */
export class RealtimeUsers extends Base {
  static observedAttributes = ['key', 'url', 'test'];

  /** @type {import('./realtime.js').Client | undefined} */
  #client;
  /** @type {import('./realtime.js').View | null} */
  #view = null;
  /** Counts openings, so that a late answer for a replaced key is closed, not shown. */
  #generation = 0;
  /** @type {HTMLUListElement | undefined} */
  #list;

  /** The client the element uses: the one set, else the page's shared one for `url`. */
  get client() {
    return this.#client ?? sharedClient(this.getAttribute('url'));
  }

  set client(client) {
    this.#client = client;
    this.#reopen();
  }

  /** The open view, once the server answered. */
  get view() {
    return this.#view;
  }

  connectedCallback() {
    if (!this.#list) {
      const root = this.shadowRoot ?? this.attachShadow({ mode: 'open' });
      const style = document.createElement('style');
      style.textContent = STYLE;
      this.#list = document.createElement('ul');
      this.#list.setAttribute('part', 'list');
      this.#list.setAttribute('role', 'list');
      root.append(style, this.#list);
    }
    this.#reopen();
  }

  disconnectedCallback() {
    this.#release();
  }

  /** @param {string} name */
  attributeChangedCallback(name) {
    if (!this.isConnected) return;
    if (name === 'test') this.#render();
    else this.#reopen();
  }

  #release() {
    this.#generation++;
    const view = this.#view;
    this.#view = null;
    view?.close().catch(() => {});
  }

  #reopen() {
    this.#release();
    const key = this.getAttribute('key');
    this.#render();
    if (!key || !this.isConnected) return;
    const generation = this.#generation;
    this.setAttribute('state', 'connecting');
    this.client.views.open(key).then(
      (view) => {
        if (generation !== this.#generation) return void view.close().catch(() => {});
        this.#view = view;
        view.on('change', () => this.#render());
        this.setAttribute('state', 'open');
        this.#render();
      },
      () => {
        if (generation === this.#generation) this.setAttribute('state', 'error');
      },
    );
  }

  #render() {
    const list = this.#list;
    if (!list) return;
    const key = this.getAttribute('key') ?? '';
    const test = this.hasAttribute('test');
    list.setAttribute('aria-label', `Users viewing ${key}`);
    const view = this.#view;
    const entries = (view?.members ?? []).map((member) => {
      const item = document.createElement('li');
      const you = member.key === view?.you;
      const name = member.data?.name ?? member.user ?? 'anonymous';
      const clients = member.clients ?? 1;
      item.setAttribute('part', you ? 'user you' : 'user');
      item.dataset.key = member.key;
      item.setAttribute(
        'aria-label',
        `${name}${you ? ' (you)' : ''}, ${clients} ${clients === 1 ? 'client' : 'clients'}`,
      );
      if (you) item.setAttribute('aria-current', 'true');
      const label = document.createElement('span');
      label.setAttribute('part', 'name');
      label.textContent = test && you ? `${name} (you)` : name;
      item.append(label);
      if (clients > 1 || test) {
        const count = document.createElement('span');
        count.setAttribute('part', 'count');
        count.textContent = `×${clients}`;
        item.append(count);
      }
      return item;
    });
    list.replaceChildren(...entries);
  }
}

if (globalThis.customElements && !customElements.get('realtime-users')) {
  customElements.define('realtime-users', RealtimeUsers);
}
