"""Self and inclusive time per function from py-spy's raw (collapsed) output."""
import collections, sys
self_t, incl = collections.Counter(), collections.Counter()
total = 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n)
    total += n
    frames = stack.split(";")
    self_t[frames[-1]] += n
    for f in set(frames):
        incl[f] += n
print("total samples", total)
print("-- self")
for f, n in self_t.most_common(25):
    print(f"{100*n/total:5.1f}%  {f}")
print("-- inclusive")
for f, n in incl.most_common(40):
    print(f"{100*n/total:5.1f}%  {f}")
