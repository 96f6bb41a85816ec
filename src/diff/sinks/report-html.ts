// The static HTML replay report (`natlab replay --html FILE`): one self-contained file (no
// server, no network, no external resource) with the summary counters per engine, the
// differences with their packets decoded side by side, a per-flow timeline (each packet of the
// flow on every engine, dropped ones marked) and links to the annotated captures. The data is
// embedded as JSON; the page's inline script builds the tables from it with DOM calls
// (textContent only: capture contents never become markup).
import { writeFile } from 'node:fs/promises';
import type { ReplayReport } from '../replay/report.ts';
import type { DifferenceDetail } from './differences.ts';
import type { FlowRecord } from './flows.ts';

export interface HtmlReportData {
  report: ReplayReport;
  differences: DifferenceDetail[];
  flows: FlowRecord[];
  /** Files to link (relative to the HTML file's directory): label and href. */
  captures: Array<{ label: string; href: string }>;
}

/** JSON safe inside a <script> element (no "</script>", no "<!--", no JS line separators). */
export function scriptJson(x: unknown): string {
  return JSON.stringify(x)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd}
code,td.mono,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:12.5px}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #d0d0d7;padding:3px 7px;vertical-align:top;text-align:left}
th{background:#f3f3f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict-ok{color:#0a6b2d;font-weight:600}.verdict-bad{color:#b00020;font-weight:600}
td.diff{background:#ffe1e1}tr.drop td.eng-drop,td.drop{background:#fff1d6}td.eng-drop::before{content:"\\2717 ";color:#b00020}
tr.differs td:first-child{border-left:4px solid #b00020}
details{margin:.3em 0}summary{cursor:pointer}.muted{color:#666}.hex{color:#555;word-break:break-all}
`;

/** The script that renders the page from the embedded JSON. */
const SCRIPT = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('natlab-data').textContent);
  var R = data.report;
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) { if (k === 'text') e.textContent = attrs[k]; else if (k === 'cls') e.className = attrs[k]; else e.setAttribute(k, attrs[k]); }
    (kids || []).forEach(function (c) { if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function num(x) { return x == null ? '-' : Number(x).toLocaleString('en-US'); }
  function table(id, head, rows) {
    var t = el('table', id ? { id: id } : null);
    t.appendChild(el('thead', null, [el('tr', null, head.map(function (h) { return el('th', { text: h }); }))]));
    var b = el('tbody');
    rows.forEach(function (r) { b.appendChild(r); });
    t.appendChild(b);
    return t;
  }
  var root = document.getElementById('app');

  // Header
  var agree = R.exitCode === 0;
  root.appendChild(el('p', null, [
    'Input ', el('code', { text: R.input.path }), ' (' + R.input.format + ', ' + num(R.input.records) + ' packets) on scenario ',
    el('code', { text: R.scenario.name }), ', engines ' + R.engines.map(function (e) { return e.engine; }).join(', ') + ': ',
    el('span', { id: 'verdict', cls: agree ? 'verdict-ok' : 'verdict-bad', text: R.exitCode === 0 ? 'engines agree' : R.exitCode === 1 ? num(R.differences.count) + ' differences on ' + num(R.differences.packets) + ' packets' : 'bad input: ' + (R.input.error || '') }),
  ]));
  if (data.captures.length) {
    var links = el('p', { id: 'captures' }, ['Annotated captures (open in Wireshark; each packet\'s story is its comment, filter ']);
    links.appendChild(el('code', { text: 'frame.comment contains "DIFFERS"' }));
    links.appendChild(document.createTextNode('): '));
    data.captures.forEach(function (c, i) {
      if (i) links.appendChild(document.createTextNode(' · '));
      links.appendChild(el('a', { href: c.href, text: c.label }));
    });
    root.appendChild(links);
  }

  // Summary counters per engine
  root.appendChild(el('h2', { text: 'Summary per engine' }));
  var es = R.engines;
  var rows = [];
  function row(label, f) { rows.push(el('tr', null, [el('th', { text: label.replace(/^  /, '\u00a0\u00a0\u00a0') })].concat(es.map(function (e) { return el('td', { cls: 'num', text: f(e) }); })))); }
  row('packets in', function (e) { return num(e.packetsIn); });
  row('delivered', function (e) { return num(e.delivered); });
  row('  translated', function (e) { return num(e.translated); });
  row('dropped', function (e) { return num(e.dropped); });
  var reasons = {};
  es.forEach(function (e) { Object.keys(e.droppedByReason).forEach(function (k) { reasons[k] = 1; }); });
  Object.keys(reasons).sort().forEach(function (k) { row('  ' + k, function (e) { return num(e.droppedByReason[k] || 0); }); });
  row('sessions created', function (e) { return num(e.sessionsCreated); });
  row('conntrack at end', function (e) { return num(e.conntrackAtEnd); });
  row('ICMP errors generated', function (e) { return num(e.generated); });
  var pts = {};
  es.forEach(function (e) { Object.keys(e.outputs).forEach(function (p) { pts[p] = 1; }); });
  Object.keys(pts).forEach(function (p) { row('out ' + p, function (e) { return num(e.outputs[p] ? e.outputs[p].frames : 0); }); });
  row('engine time (s)', function (e) { return (e.engineMs / 1000).toFixed(2); });
  root.appendChild(table('summary', [''].concat(es.map(function (e) { return e.engine; })), rows));

  // Differences, packets decoded side by side
  root.appendChild(el('h2', { text: 'Differences' }));
  if (!data.differences.length) root.appendChild(el('p', { id: 'no-differences', cls: 'muted', text: es.length < 2 ? 'One engine: nothing to compare.' : 'None: the engines agree on every packet.' }));
  else {
    if (R.differences.count > data.differences.length) root.appendChild(el('p', { cls: 'muted', text: 'The first ' + data.differences.length + ' differing packets of ' + num(R.differences.packets) + '.' }));
    var drows = data.differences.map(function (d, di) {
      var fieldsSet = {};
      var cols = [];
      if (d.packet) cols.push({ head: 'input #' + d.input + ' (from ' + d.from + ')', p: d.packet, cls: '' });
      d.engines.forEach(function (e) {
        if (!e.outputs.length) cols.push({ head: e.engine + ': ' + e.verdict, p: null, cls: 'drop' });
        e.outputs.forEach(function (o, k) { cols.push({ head: e.engine + ': ' + e.verdict + ' to ' + o.to + (e.outputs.length > 1 ? ' (' + (k + 1) + ')' : ''), p: o, cls: '' }); });
      });
      cols.forEach(function (c) { if (c.p) Object.keys(c.p.fields).forEach(function (f) { fieldsSet[f] = 1; }); });
      var fields = Object.keys(fieldsSet);
      var firstEng = cols.filter(function (c) { return c.p && c.head.indexOf('input #') !== 0; })[0];
      var inner = table(null, ['field'].concat(cols.map(function (c) { return c.head; })), [
        el('tr', null, [el('th', { text: 'packet' })].concat(cols.map(function (c) { return el('td', { cls: 'mono ' + c.cls, text: c.p ? c.p.summary : '(no output)' }); }))),
      ].concat(fields.map(function (f) {
        return el('tr', null, [el('th', { text: f })].concat(cols.map(function (c) {
          var v = c.p ? c.p.fields[f] : undefined;
          var differs = c.p && firstEng && c !== firstEng && c.head.indexOf('input #') !== 0 && firstEng.p.fields[f] !== v;
          return el('td', { cls: 'mono' + (differs ? ' diff' : '') + (c.cls ? ' ' + c.cls : ''), text: v == null ? '' : v });
        })));
      })).concat([
        el('tr', null, [el('th', { text: 'ct / re-addressed' }), d.packet ? el('td', { text: '' }) : null].concat(d.engines.map(function (e) { return el('td', { colspan: String(Math.max(1, e.outputs.length)), text: 'ct ' + e.ct + (e.readdressed ? ', re-addressed: ' + e.readdressed : '') }); }))),
        el('tr', null, [el('th', { text: 'bytes' })].concat(cols.map(function (c) { return el('td', { cls: 'mono hex ' + c.cls, text: c.p ? c.p.hex : '' }); }))),
      ]));
      return el('tr', { cls: 'differs', 'data-input': String(d.input) }, [
        el('td', { cls: 'num', text: '#' + d.input }),
        el('td', { text: d.kinds.join(', ') }),
        el('td', null, [el('div', null, d.texts.map(function (t) { return el('div', { text: t }); })), el('details', di < 5 ? { open: '' } : null, [el('summary', { text: 'packets side by side' }), inner])]),
      ]);
    });
    root.appendChild(table('differences', ['input', 'kind', 'what differs'], drows));
  }
  if (R.differences.conntrack.length) {
    root.appendChild(el('h2', { text: 'Conntrack tables at the end' }));
    root.appendChild(el('ul', { id: 'conntrack' }, R.differences.conntrack.map(function (c) { return el('li', { cls: 'mono', text: c }); })));
  }
  if (R.differences.notes.length) root.appendChild(el('ul', { cls: 'muted' }, R.differences.notes.map(function (n) { return el('li', { text: 'note: ' + n }); })));

  // Flows and their timelines
  root.appendChild(el('h2', { text: 'Flows (' + data.flows.length + ')' }));
  var flows = data.flows.slice().sort(function (a, b) { return (b.differing > 0) - (a.differing > 0) || a.firstInput - b.firstInput; });
  var frows = flows.map(function (f) {
    var tl = null;
    if (f.timeline) {
      tl = el('details', { cls: 'timeline' }, [el('summary', { text: 'timeline (' + f.timeline.length + (f.timeline.length < f.packets ? ' of ' + f.packets : '') + ' packets)' }),
        table(null, ['input', 't (s)', 'from', 'packet'].concat(es.map(function (e) { return e.engine; })), f.timeline.map(function (ev) {
          var anyDrop = false;
          var cells = es.map(function (e) {
            var v = ev.engines[e.engine];
            if (v && !v.delivered) anyDrop = true;
            return el('td', { cls: v && !v.delivered ? 'drop eng-drop' : '', text: v ? v.text : '' });
          });
          return el('tr', { cls: (ev.differs ? 'differs ' : '') + (anyDrop ? 'drop' : '') }, [
            el('td', { cls: 'num', text: '#' + ev.input }), el('td', { cls: 'num', text: (ev.timeUs / 1e6).toFixed(6) }), el('td', { text: ev.from }), el('td', { cls: 'mono', text: ev.packet }),
          ].concat(cells));
        }))]);
      if (f.differing) tl.setAttribute('open', '');
    }
    return el('tr', { cls: f.differing ? 'differs' : '' }, [
      el('td', { cls: 'mono', text: f.name }), el('td', { cls: 'num', text: num(f.packets) }), el('td', { cls: 'num', text: num(f.dropped) }), el('td', { cls: 'num', text: num(f.differing) }),
      el('td', null, [tl || el('span', { cls: 'muted', text: 'timeline not kept (flow limit)' })]),
    ]);
  });
  root.appendChild(table('flows', ['flow', 'packets', 'dropped', 'differing', 'packets on each engine'], frows));
  document.body.setAttribute('data-rendered', 'true');
})();
`;

/** The whole page. */
export function replayHtml(d: HtmlReportData): string {
  const title = `natlab replay: ${d.report.input.path}`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    // No network: nothing may load from anywhere but this file.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    `<h1>${escapeHtml(title)}</h1>`,
    '<noscript><p>This report is built by its inline script from the data embedded below; enable JavaScript, or read report.json.</p></noscript>',
    '<div id="app"></div>',
    `<script type="application/json" id="natlab-data">${scriptJson(d)}</script>`,
    `<script>${SCRIPT}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

export async function writeReplayHtml(path: string, d: HtmlReportData): Promise<void> {
  await writeFile(path, replayHtml(d));
}
