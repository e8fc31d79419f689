# warden.egress: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
TOP := $(CURDIR)
export ANSIBLE_CONFIG := $(TOP)/ansible.cfg
export CONTAINERS_CONF := $(TOP)/lab/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(TOP)/.build/collections
SANITY_ROOT := $(or $(TMPDIR),/tmp)/warden-egress-sanity
SANITY_DIR := $(SANITY_ROOT)/ansible_collections/warden/egress

.PHONY: setup demo test unit lint sanity core-matrix package docs ee release-check molecule lab-destroy clean

setup:            ## install what the lab and the tests need (Debian packages, PyPI, images)
	bash .ci/setup.sh

demo: setup       ## build the lab, apply playbooks/site.yml, verify with traffic, print the flow table
	bash lab/demo.sh

# Unit first; then Molecule beside lint, sanity, core-matrix and release-check (.ci/test.sh).
test: setup       ## unit tests, ansible-lint, ansible-test sanity, the other ansible-core versions, the release checks, Molecule
	@bash .ci/test.sh

unit:
	bash .ci/collection-link.sh
	python3 -m pytest -q -n 2 --dist loadgroup --durations=25 tests/unit

lint:
	bash .ci/collection-link.sh
	ansible-lint --profile production

sanity:
	# A copy outside the checkout: inside it, ansible-test would take the checkout's git
	# file list, where this copy is ignored.
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_DIR)
	git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ $(SANITY_DIR)/
	# ansible-test's venvs see only this tree: add the collections this one depends on.
	mkdir -p $(SANITY_ROOT)/ansible_collections/ansible
	rsync -a "$$(python3 -c 'import ansible_collections.ansible.utils as m; print(list(m.__path__)[0])')/" $(SANITY_ROOT)/ansible_collections/ansible/utils/
	cd $(SANITY_DIR) && ansible-test sanity --python 3.11 --requirements --color no

# The other ansible-core versions meta/runtime.yml claims (2.20 and later on Python 3.12),
# each in its own venv: the version-dependent sanity tests and a unit subset.
# make test runs the oldest and the newest (2.19 is the main run); a release runs every one:
# make core-matrix CORE_VERSIONS='2.17 2.18 2.20/3.12 2.21/3.12'
CORE_VERSIONS ?= 2.17 2.21/3.12
core-matrix:
	bash .ci/core-matrix.sh $(CORE_VERSIONS)

release-check: package docs ee   ## the tarball through galaxy-importer, the docs site with -W, the EE definition

package:          ## changelog lint, build the tarball (changelog released at galaxy.yml's version), check it, galaxy-importer
	bash .ci/package.sh

docs: package     ## the docs site from the tarball (antsibull-docs + Sphinx -W): .build/docs/html
	bash docs/build/build.sh

ee: package       ## ansible-builder create and introspect; the EE's Python and system requirements install here
	bash .ci/ee.sh

MOLECULE_SCENARIOS := linux iptables pf network lockout
molecule:
	bash .ci/collection-link.sh
	@for scenario in $(MOLECULE_SCENARIOS); do \
	  start=$$SECONDS; molecule test -s $$scenario || exit $$?; \
	  echo "make molecule: $$scenario passed in $$((SECONDS - start)) s"; \
	done

lab-destroy:
	ansible-playbook lab/destroy.yml

clean:
	rm -rf .build lab/report
