# Sphinx configuration of the warden.egress docs site; build.sh lays out the sources.
from __future__ import annotations

import os

project = "warden.egress"
copyright = "warden.egress contributors"
title = "warden.egress"
html_short_title = "warden.egress"

extensions = ["sphinx.ext.intersphinx", "sphinx_antsibull_ext", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"

pygments_style = "ansible"
# Code blocks say their language (the plugin pages' examples are yaml+jinja); a Markdown
# fence without one (a message, a command's output) is shown as it is.
highlight_language = "none"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

# Links between the Markdown pages may name a heading (page.md#a-heading).
myst_heading_anchors = 3

# The site is built offline: references to Ansible's own documentation (its labels in
# ansible-docs-labels.txt, and the pages of the plugins of ansible.builtin and of the
# collections this one uses) resolve through an inventory build.sh writes; every other one
# must resolve here.
intersphinx_mapping = {
    "ansible_devel": ("https://docs.ansible.com/projects/ansible/devel/", os.environ["WARDEN_DOCS_ANSIBLE_INV"]),
}
default_role = "any"
nitpicky = True
