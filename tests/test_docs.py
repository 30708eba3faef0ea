"""The README and docs/ hold together: every relative link points at a
file that exists (and at a heading of it, for ``#anchors``), and the
README stays a front page (at most 12 KB; the guides live in docs/)."""
import glob
import os.path as osp
import re

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
LINK = re.compile(r'\]\(([^)\s]+)\)')


def pages():
    return [osp.join(REPO, 'README.md')] + sorted(
        glob.glob(osp.join(REPO, 'docs', '**', '*.md'), recursive=True))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = heading.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: str) -> set:
    found, fenced = set(), False
    with open(path) as f:
        for line in f:
            if line.startswith('```'):
                fenced = not fenced
            elif not fenced and line.startswith('#'):
                found.add(slug(line.lstrip('#')))
    return found


def test_every_relative_link_resolves():
    broken = []
    for page in pages():
        with open(page) as f:
            # code blocks hold code, not links (``stage['x'](y)``)
            text = re.sub(r'```.*?```', '', f.read(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r'[a-z]+://', target) or target.startswith('mailto:'):
                continue
            path, _, anchor = target.partition('#')
            resolved = osp.normpath(osp.join(osp.dirname(page), path)) \
                if path else page
            where = f'{osp.relpath(page, REPO)}: {target}'
            if not osp.exists(resolved):
                broken.append(f'{where} (no such file)')
            elif anchor and resolved.endswith('.md') and \
                    anchor not in anchors(resolved):
                broken.append(f'{where} (no such heading)')
    assert broken == []


def test_the_readme_is_a_front_page():
    readme = osp.join(REPO, 'README.md')
    assert osp.getsize(readme) <= 12 * 1024
    with open(readme) as f:
        text = f.read()
    # the two commands come first
    first = re.search(r'```bash\n(.*?)```', text, re.S).group(1)
    assert [line.split()[:2]
            for line in first.strip().splitlines()] == [['make', 'demo'],
                                                        ['make', 'test']]
    # every guide of docs/ is linked from it
    for page in pages()[1:]:
        rel = osp.relpath(page, REPO)
        if rel.startswith(('docs/user_guide/', 'docs/design/')) or \
                rel in ('docs/get_started.md', 'docs/results.md'):
            assert f']({rel})' in text, rel
