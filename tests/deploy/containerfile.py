"""A reader of deploy/container/Containerfile, for the deploy tests.

Enough of the Dockerfile syntax for that file: comments, continuation
lines, stages (FROM IMAGE [AS NAME]) and their instructions, and the
packages an "apt-get install" in a RUN names. Run as a program it prints
what a shell test asks for:

    containerfile.py FILE packages STAGE   the packages STAGE installs
    containerfile.py FILE base STAGE       STAGE's base image
    containerfile.py FILE user             the final stage's USER

STAGE is a stage's name, or "final" for the last one.
"""

import shlex
import sys


class Stage:
    def __init__(self, base, name):
        self.base = base
        self.name = name
        self.instructions = []  # (KEYWORD, argument text)

    def all(self, keyword):
        return [arg for kw, arg in self.instructions if kw == keyword]

    def last(self, keyword):
        found = self.all(keyword)
        return found[-1] if found else None

    def apt_packages(self):
        """The packages named by the apt-get installs of the RUNs."""
        pkgs = []
        for run in self.all("RUN"):
            for cmd in run.split("&&"):
                words = shlex.split(cmd)
                # Skip leading VAR=value words of "env" assignments.
                while words and "=" in words[0] and not words[0].startswith("-"):
                    words = words[1:]
                if words[:2] == ["apt-get", "install"]:
                    pkgs += [w for w in words[2:] if not w.startswith("-")]
        return pkgs


def parse(path):
    """The stages of the Containerfile at path, in order."""
    lines = []
    cur = ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#"):
                continue  # comments, within continuations too
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            if cur.strip():
                lines.append(cur.strip())
            cur = ""
    if cur.strip():
        lines.append(cur.strip())
    stages = []
    for line in lines:
        kw, _, arg = line.partition(" ")
        kw = kw.upper()
        arg = " ".join(arg.split())
        if kw == "FROM":
            words = arg.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            if kw != "ARG":
                raise ValueError("%s: %s before the first FROM" % (path, kw))
        else:
            stages[-1].instructions.append((kw, arg))
    if not stages:
        raise ValueError("%s: no FROM" % path)
    return stages


def stage(stages, name):
    if name == "final":
        return stages[-1]
    for s in stages:
        if s.name == name:
            return s
    raise KeyError("no stage %s" % name)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    stages = parse(argv[1])
    what = argv[2]
    if what == "packages" and len(argv) == 4:
        print("\n".join(stage(stages, argv[3]).apt_packages()))
    elif what == "base" and len(argv) == 4:
        print(stage(stages, argv[3]).base)
    elif what == "user":
        print(stages[-1].last("USER") or "")
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
