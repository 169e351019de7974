// The cluster's nodes above the live calls (only when the daemon is one node of a cluster): a link
// per node with its calls and capacity; following one shows that node's calls only (#/calls?node=).

import { request } from "./api.js";
import { clear, element } from "./dom.js";

const REFRESH_MS = 5000;

export class NodesBar {
  constructor(table) {
    this.table = table; // the CallsTable it filters
    this.bar = document.getElementById("nodes-bar");
    this.nodes = [];
    this.selected = null; // a node id, or null for every node
    this.timer = null;
  }

  // Asks the daemon whether it is part of a cluster; if so, shows the bar and keeps it current.
  async start() {
    await this.load();
    clearInterval(this.timer);
    if (this.table.clustered) this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
  }

  async load() {
    let answer;
    try {
      answer = await request("GET", "/api/v1/nodes");
    } catch {
      return; // the bar keeps its last state; the event pill already says when the daemon is away
    }
    this.table.setClustered(Boolean(answer.cluster));
    this.nodes = answer.nodes;
    this.render();
  }

  // The view of one node (or of all of them, null), from the hash #/calls?node=<id>.
  select(node) {
    this.selected = node;
    this.table.setNodeFilter(node);
    this.render();
    const title = document.getElementById("calls-title-text");
    title.textContent = node ? `Live calls on ${node}` : "Live calls";
  }

  render() {
    this.bar.hidden = !this.table.clustered;
    if (this.bar.hidden) return;
    const links = [this.link("All nodes", null, "")];
    for (const node of this.nodes) {
      const load = `${node.calls}/${node.capacity} calls${node.draining ? ", draining" : ""}`;
      links.push(this.link(node.node, node.node, load));
    }
    clear(this.bar).append(...links);
  }

  link(label, node, load) {
    const href = node ? `#/calls?node=${encodeURIComponent(node)}` : "#/calls";
    const attributes = { href, class: "node-link", "data-node": node || "" };
    if (node === this.selected) attributes["aria-current"] = "true";
    const children = load ? [label, element("span", { class: "node-load" }, [load])] : [label];
    return element("a", attributes, children);
  }
}
