#!/usr/bin/env python3
"""The parts of an update script that can be derived from two install scripts.

Used by scripts/release/build_update (read its header first). Each
subcommand prints SQL lines on stdout, without a trailing blank line:

  functions OLD NEW        functions gone (DROP), changed (CREATE OR REPLACE,
                           or DROP + CREATE when the return type, argument
                           names or defaults changed) and new (CREATE), each
                           with its COMMENT ON FUNCTION where a fresh install
                           would have one the update would not otherwise make
  event-triggers OLD NEW   event triggers gone, changed (DROP + CREATE) or new,
                           and the ALTER EVENT TRIGGER statements that put them
                           in their state
  views OLD NEW            views gone, changed (CREATE OR REPLACE) or new, with
                           their COMMENT ON VIEW
  grants NEW               the install script's grants section (sql/grants.sql,
                           pgrx's "finalize" block) from its first statement on
  leftovers OLD NEW        (for a person, on stdout) every other statement
                           that differs between the two scripts: tables,
                           columns, indexes, sequences, triggers, comments,
                           data. The generated script does not contain them;
                           whoever writes the update decides what each needs.

OLD is the released install script of the version updated from
(sql/released/pg_audit_trail--A.sql), NEW the one `cargo pgrx install`
generated for the version updated to. Statements are compared as text, with
the comments before them (pgrx's markers, the SQL files' explanations)
removed; a statement's own body is compared as it is.
"""
import re
import sys


def statements(text):
    """The SQL statements of a script, split at semicolons outside comments,
    quoted strings and dollar-quoted bodies."""
    out, i, n = [], 0, len(text)
    start = 0
    while i < n:
        c = text[i]
        if text.startswith('--', i):
            j = text.find('\n', i); i = n if j < 0 else j + 1; continue
        if text.startswith('/*', i):
            j = text.find('*/', i); i = n if j < 0 else j + 2; continue
        if c == "'":
            j = i + 1
            while True:
                j = text.find("'", j)
                if j < 0: j = n; break
                if text.startswith("''", j): j += 2; continue
                break
            i = j + 1; continue
        if c == '$':
            m = re.match(r'\$[A-Za-z_]*\$', text[i:])
            if m:
                tag = m.group(0); j = text.find(tag, i + len(tag))
                i = j + len(tag); continue
        if c == ';':
            out.append(text[start:i + 1]); start = i + 1
        i += 1
    return out


def strip_comments(st):
    """Drops the comments before the statement; its body stays as it is."""
    st = st.lstrip()
    while True:
        if st.startswith('--'):
            j = st.find('\n'); st = '' if j < 0 else st[j + 1:].lstrip(); continue
        if st.startswith('/*'):
            j = st.find('*/'); st = '' if j < 0 else st[j + 2:].lstrip(); continue
        return st


def script_statements(path):
    return [s for s in (strip_comments(st) for st in statements(open(path).read())) if s]


def split_args(args):
    # Commas inside parentheses or a quoted literal (a DEFAULT '{a,b}')
    # separate no arguments; a doubled quote closes and reopens the literal.
    depth, quoted, cur, out = 0, False, '', []
    for ch in args:
        if ch == "'": quoted = not quoted
        if ch == '(' and not quoted: depth += 1
        if ch == ')' and not quoted: depth -= 1
        if ch == ',' and depth == 0 and not quoted:
            out.append(cur); cur = ''
        else:
            cur += ch
    if cur.strip(): out.append(cur)
    return out


FUNCTION = re.compile(r'CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+([^\s(]+)\s*\((.*?)\)\s*RETURNS', re.S)


def functions(stmts):
    """{(name, argument types): statement} in script order."""
    fns = {}
    for s in stmts:
        # pgrx's generated argument lists carry /* Rust type */ comments
        s = re.sub(r'\s*/\*.*?\*/', '', s, flags=re.S) if "'MODULE_PATHNAME'" in s else s
        m = FUNCTION.match(s)
        if m:
            name = m.group(2).replace('"', '')
            args = re.sub(r'\s+', ' ', m.group(3))
            # argument types only: drop names and defaults
            types = []
            for a in split_args(args):
                a = re.sub(r'\s+DEFAULT\s+.*$', '', a.strip(), flags=re.I | re.S)
                a = re.sub(r'^(IN|OUT|INOUT)\s+', '', a)
                parts = a.split(' ', 1)
                if len(parts) == 2 and not re.match(r'^(double|character|timestamp|time|bit)$', parts[0], re.I) \
                        and parts[0] not in ('pg_ddl_command',):
                    a = parts[1]
                types.append(a.strip().replace('"', ''))
            fns[(name, ','.join(types))] = s
    return fns


def arglist(s):
    m = FUNCTION.match(s)
    return re.sub(r'\s+', ' ', m.group(3)).strip() if m else None


def returns(s):
    m = re.search(r'RETURNS\s+(.*?)\s*(LANGUAGE|STRICT|IMMUTABLE|STABLE|VOLATILE|SET|AS|SECURITY|PARALLEL)\b', s, re.S)
    return re.sub(r'\s+', ' ', m.group(1)) if m else None


def bare(name):
    """A function or view name without quotes and without the extension's schema."""
    name = name.replace('"', '')
    return name[len('audit_trail.'):] if name.startswith('audit_trail.') else name


def comments_on(stmts, kind):
    """{target: statement} of the COMMENT ON <kind> statements."""
    out = {}
    for s in stmts:
        m = re.match(r'COMMENT\s+ON\s+' + kind + r'\s+(.*?)\s+IS\b', s, re.S)
        if m:
            out[re.sub(r'\s+', ' ', m.group(1))] = s
    return out


def comment_name(target):
    return bare(target.split('(', 1)[0].strip())


def gen_functions(old_stmts, new_stmts):
    old, new = functions(old_stmts), functions(new_stmts)
    old_c, new_c = comments_on(old_stmts, 'FUNCTION'), comments_on(new_stmts, 'FUNCTION')
    entries = []
    attached = set()

    def comments_for(name, recreated):
        # A new or dropped-and-made-again function has no comment yet; one
        # replaced in place keeps its own, so only a changed text is needed.
        out = []
        for target, c in new_c.items():
            if comment_name(target) == bare(name) and (recreated or old_c.get(target) != c):
                out.append(c); attached.add(target)
        return out

    for k in sorted(old):
        if k not in new:
            entries.append([f'-- removed', f'DROP FUNCTION {k[0]}({k[1]});'])
    for k in new:
        s = new[k]
        if k in old and old[k] == s:
            continue
        if k in old and (returns(old[k]) != returns(s) or arglist(old[k]) != arglist(s)):
            entries.append(['-- return type, argument names or defaults changed', f'DROP FUNCTION {k[0]}({k[1]});', s]
                           + comments_for(k[0], True))
        elif k in old:
            entries.append(['-- changed', re.sub(r'^CREATE\s+FUNCTION', 'CREATE OR REPLACE FUNCTION', s)]
                           + comments_for(k[0], False))
        else:
            entries.append(['-- new', s] + comments_for(k[0], True))
    for target, c in new_c.items():
        if target not in attached and old_c.get(target) != c:
            entries.append(['-- comment changed', c])
    for target in old_c:
        if target not in new_c and any(bare(k[0]) == comment_name(target) for k in new):
            entries.append(['-- comment removed', f'COMMENT ON FUNCTION {target} IS NULL;'])
    return '\n\n'.join('\n'.join(e) for e in entries)


def named(stmts, pattern):
    """{name: statement} of the statements that match `pattern` (its group 1 is the name)."""
    out = {}
    for s in stmts:
        m = re.match(pattern, s, re.S)
        if m:
            out[m.group(1).replace('"', '')] = s
    return out


def gen_event_triggers(old_stmts, new_stmts):
    create = r'CREATE\s+EVENT\s+TRIGGER\s+(\S+)'
    alter = r'ALTER\s+EVENT\s+TRIGGER\s+(\S+)'
    old, new = named(old_stmts, create), named(new_stmts, create)
    lines = [f'DROP EVENT TRIGGER {n};' for n in old if n not in new]
    lines += [f'DROP EVENT TRIGGER {n};' for n in old if n in new and old[n] != new[n]]
    made = [n for n in new if old.get(n) != new[n]]
    lines += [new[n] for n in made]
    # An event trigger made again starts ENABLEd (origin): its state is set
    # again, as are states the old script did not set.
    old_alters = {s for s in old_stmts if re.match(alter, s)}
    for s in new_stmts:
        m = re.match(alter, s)
        if m and (s not in old_alters or m.group(1).replace('"', '') in made):
            lines.append(s)
    return '\n'.join(lines)


def gen_views(old_stmts, new_stmts):
    create = r'CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+([^\s(]+)'
    old, new = named(old_stmts, create), named(new_stmts, create)
    old_c, new_c = comments_on(old_stmts, 'VIEW'), comments_on(new_stmts, 'VIEW')
    lines = [f'DROP VIEW {n};' for n in old if n not in new]
    for n, s in new.items():
        comment = [c for t, c in new_c.items() if t.replace('"', '') == n]
        if n not in old:
            lines += [s] + comment
        elif old[n] != s:
            # Only columns added at the end: anything else needs DROP VIEW,
            # CREATE VIEW and its grants again (by hand).
            lines += [re.sub(r'^CREATE\s+VIEW', 'CREATE OR REPLACE VIEW', s)] + comment
        else:
            lines += [c for t, c in new_c.items() if t.replace('"', '') == n and old_c.get(t) != c]
    return '\n'.join(lines)


def finalize_block(path):
    """The lines of pgrx's "finalize" block (sql/grants.sql), from its first
    line that is not a comment to the end of the block."""
    lines = open(path).read().split('\n')
    try:
        at = lines.index('-- finalize')
    except ValueError:
        sys.exit(f'{path}: no "-- finalize" block (sql/grants.sql): is this a pgrx install script?')
    out = []
    for line in lines[at + 1:]:
        if line.startswith('/* </end connected objects> */'):
            break
        if not out and (line.startswith('--') or not line.strip()):
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def gen_grants(new_path):
    return '\n'.join(finalize_block(new_path))


def gen_leftovers(old_stmts, new_stmts, old_path, new_path):
    handled = re.compile(r'(CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|VIEW|EVENT\s+TRIGGER)|ALTER\s+EVENT\s+TRIGGER'
                         r'|COMMENT\s+ON\s+(FUNCTION|VIEW))\b', re.S)
    grants = {strip_comments(s) for p in (old_path, new_path)
              for s in statements('\n'.join(finalize_block(p)) + '\n')}
    grants.discard('')

    def rest(stmts):
        return [s for s in stmts if not handled.match(s) and s not in grants]

    old, new = rest(old_stmts), rest(new_stmts)
    first = lambda s: s.split('\n', 1)[0][:110]
    lines = [f'+ {first(s)}' for s in new if s not in old]
    lines += [f'- {first(s)}' for s in old if s not in new]
    return '\n'.join(lines)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, paths = argv[1], argv[2:]
    if cmd == 'grants' and len(paths) == 1:
        out = gen_grants(paths[0])
    elif len(paths) == 2:
        old, new = script_statements(paths[0]), script_statements(paths[1])
        if cmd == 'functions':
            out = gen_functions(old, new)
        elif cmd == 'event-triggers':
            out = gen_event_triggers(old, new)
        elif cmd == 'views':
            out = gen_views(old, new)
        elif cmd == 'leftovers':
            out = gen_leftovers(old, new, paths[0], paths[1])
        else:
            sys.exit(__doc__)
    else:
        sys.exit(__doc__)
    if out:
        print(out)


if __name__ == '__main__':
    main(sys.argv)
