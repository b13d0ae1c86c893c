/**
 * `<realtime-users key="VIEW">`: who else has view `VIEW` open, live. Importing this
 * module registers the element (in a page; in other environments it only exports).
 *
 * While in the document the element has the view open (closed on removal). It connects
 * to the server the module was loaded from (one client shared by the page's elements)
 * unless the `url` attribute or the `client` property says otherwise. It renders an
 * accessible list, themeable through the CSS parts `list`, `user`, `you`, `name`,
 * `count` and the custom properties `--realtime-users-gap`,
 * `--realtime-users-you-weight`; its `state` attribute is `connecting`, `open` or
 * `error`; the `test` attribute marks the current user visibly and shows every count.
 *
 * @packageDocumentation
 */

import type { Client, View } from './realtime.js';

/** The client shared by the page's elements for `url` (the module's own server when empty). */
export function sharedClient(url?: string | null): Client;

/** The `<realtime-users>` element. */
export class RealtimeUsers extends HTMLElement {
  /** The attributes the element reacts to. */
  static observedAttributes: string[];
  /** The client the element uses: the one set, else the page's shared one for `url`. */
  client: Client;
  /** The open view, once the server answered. */
  readonly view: View | null;
  /** Opens the view (the custom element callback). */
  connectedCallback(): void;
  /** Closes the view (the custom element callback). */
  disconnectedCallback(): void;
  /** Re-opens or re-renders (the custom element callback). */
  attributeChangedCallback(name: string): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'realtime-users': RealtimeUsers;
  }
}
