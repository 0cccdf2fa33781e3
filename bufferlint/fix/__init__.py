"""`--fix`: rebuild the buffers a hook misses, in the hook, on the module's own device.

Layout, one job per module:
- `trace`: construction as it runs (which steps build each buffer);
- `index`, `workspace`: the files' CSTs and the class model over their current texts;
- `replay`: which construction statements a rebuild must re-run, and with which names;
- `purity`: whether re-running them is safe;
- `plan`: the statements for one finding; `swaps`: the fixes that rewrite a statement
  where it stands (BL003's rebuilds, BL004's attributes); `edit`: putting them into the
  source;
- `files`: byte-faithful, atomic writes; `session`: rounds of lint and fix.
"""

from bufferlint.fix.session import FixRun, attach_fixes, fix_paths

__all__ = ["FixRun", "attach_fixes", "fix_paths"]
