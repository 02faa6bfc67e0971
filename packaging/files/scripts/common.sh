# --- helpers shared by the maintainer scripts (packaging/files/scripts/common.sh,
# --- pasted in at build time so each script stands alone) ---

HP_VERSION="@VERSION@"
# HP_SCHEMA is the database schema version this version's binary migrates to.
HP_SCHEMA=@SCHEMA@
HP_BIN=/usr/bin/healthpost
HP_DEFAULT_DATA=/var/lib/healthpost
HP_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# HP_BLOCKER stops the unit from starting (ConditionPathExists=!) while the
# database does not fit the installed version; postinst removes it.
HP_BLOCKER_NAME=UPGRADE-FAILED

hp_say() { printf 'healthpost: %s\n' "$*"; }
hp_err() { printf 'healthpost: %s\n' "$*" >&2; }

# hp runs the installed healthpost with a clean environment, as the service
# would, so a HEALTHPOST_* variable in the technician's shell changes nothing.
hp() { env -i PATH="$HP_PATH" LANG=C.UTF-8 "$HP_BIN" "$@"; }

# hp_user runs it as the service's user, so every file it makes is the node's,
# with the unit's UMask: no access for other users.
hp_user() { (umask 0027 && env -i PATH="$HP_PATH" LANG=C.UTF-8 runuser -u healthpost -- "$HP_BIN" "$@"); }

# hp_data_dir prints the data directory the installed binary uses (the
# default while no binary is installed). When the configuration does not
# load it prints the binary's message instead and fails.
hp_data_dir() {
	if [ ! -x "$HP_BIN" ]; then
		echo "$HP_DEFAULT_DATA"
		return 0
	fi
	if ! hp_out=$(hp config show 2>&1); then
		printf '%s\n' "$hp_out"
		return 1
	fi
	printf '%s\n' "$hp_out" | sed -n 's/^data_dir = "\(.*\)"  # .*$/\1/p'
}

# hp_db_schema prints the schema version written in the database file's
# header: SQLite's user_version, 4 bytes big-endian at offset 60 (see
# https://www.sqlite.org/fileformat.html). While a node runs, a migration may
# sit in the WAL and the header lag behind, never run ahead; so a header
# newer than HP_SCHEMA is certainly newer.
hp_db_schema() {
	od -An -tu1 -j60 -N4 "$1" 2>/dev/null | awk 'NF == 4 { print (($1 * 256 + $2) * 256 + $3) * 256 + $4 }'
}

# hp_systemd is true when systemd runs this machine (not a chroot, not a
# container without it).
hp_systemd() { [ -d /run/systemd/system ]; }

hp_stop_node() {
	if hp_systemd; then
		deb-systemd-invoke stop healthpost.service || true
	fi
}

# hp_start_node starts the node if its unit is enabled, and says what came
# of it. deb-systemd-invoke starts only an enabled unit, and only where
# policy-rc.d allows (containers and image builders forbid it); systemctl
# is-active, a query, tells what happened.
hp_start_node() {
	hp_systemd || return 0
	systemctl --system daemon-reload >/dev/null || true
	hp_out=$(deb-systemd-invoke start healthpost.service 2>&1) || true
	[ -z "$hp_out" ] || printf '%s\n' "$hp_out"
	if systemctl --quiet is-active healthpost.service; then
		hp_say "the node is running (sudo systemctl status healthpost)."
		return 0
	fi
	case "$hp_out" in
	*"returned 101, not running"*)
		hp_say "policy-rc.d forbids starting services here, so the node was not started."
		hp_say "It is enabled and starts at the next boot."
		return 0
		;;
	esac
	if ! deb-systemd-helper --quiet is-enabled healthpost.service; then
		hp_say "the service is disabled, so the node was not started; to start it now and at boot:"
		hp_say "  sudo systemctl enable --now healthpost"
		return 0
	fi
	hp_err "the node did not start. See why with:"
	hp_err "  sudo journalctl -u healthpost -n 50     and     sudo healthpost doctor"
	return 1
}

# hp_backup DATA FROM copies the database of DATA (and its WAL, when a crash
# left one) to DATA/backups/pre-upgrade-<UTC time>-from-<FROM>, while holding
# the data directory's lock so no node can write meanwhile, checks the copy
# byte for byte, and records it in DATA/backups/.upgrade-pending for postinst.
# It prints the copy's directory. The node must be stopped first.
hp_backup() {
	hp_data=$1
	hp_db=$hp_data/healthpost.db
	hp_dest=$hp_data/backups/pre-upgrade-$(date -u +%Y%m%dT%H%M%SZ)-from-$2
	mkdir -p "$hp_data/backups"
	chown healthpost:healthpost "$hp_data/backups" 2>/dev/null || true
	chmod 0750 "$hp_data/backups"
	exec 9>>"$hp_data/healthpost.lock"
	chown healthpost:healthpost "$hp_data/healthpost.lock" 2>/dev/null || true
	if ! flock --nonblock 9; then
		exec 9>&-
		hp_err "a healthpost process (process $(head -n 1 "$hp_data/healthpost.lock" 2>/dev/null)) is using $hp_data."
		hp_err "Stop it first (Ctrl-C where it runs, or: sudo systemctl stop healthpost), then run the install again."
		return 1
	fi
	rm -rf "$hp_dest.partial"
	mkdir "$hp_dest.partial"
	if ! cp -p "$hp_db" "$hp_dest.partial/healthpost.db" ||
		{ [ -s "$hp_db-wal" ] && ! cp -p "$hp_db-wal" "$hp_dest.partial/healthpost.db-wal"; } ||
		! sync ||
		! cmp -s "$hp_db" "$hp_dest.partial/healthpost.db"; then
		rm -rf "$hp_dest.partial"
		exec 9>&-
		hp_err "could not copy $hp_db to $hp_dest (see the message above)."
		return 1
	fi
	mv "$hp_dest.partial" "$hp_dest"
	chown healthpost:healthpost "$hp_dest" "$hp_dest"/healthpost.db* 2>/dev/null || true
	printf '%s\n%s\n' "$hp_dest" "$2" >"$hp_data/backups/.upgrade-pending"
	exec 9>&-
	echo "$hp_dest"
}

# hp_room DATA fails, saying why, unless DATA is writable and has room for a
# copy of the database and what a migration may add.
hp_room() {
	hp_data=$1
	hp_db=$hp_data/healthpost.db
	if ! touch "$hp_data/.write-probe" 2>/dev/null; then
		hp_err "the data directory $hp_data cannot be written (is its partition mounted read-only, or full?)."
		hp_err "Make it writable again (see 'The SD card is full' in /usr/share/doc/healthpost/README.md.gz),"
		hp_err "then run the install again."
		return 1
	fi
	rm -f "$hp_data/.write-probe"
	hp_size_kb=$(du -k -c "$hp_db" "$hp_db-wal" 2>/dev/null | tail -n 1 | cut -f 1)
	# The copy, plus a tenth (at least 64 MB) for the migration's own growth.
	hp_margin_kb=$((hp_size_kb / 10))
	[ "$hp_margin_kb" -ge 65536 ] || hp_margin_kb=65536
	hp_need_kb=$((hp_size_kb + hp_margin_kb))
	hp_free_kb=$(df -P -k "$hp_data" | awk 'NR == 2 { print $4 }')
	if [ "$hp_free_kb" -lt "$hp_need_kb" ]; then
		hp_err "not enough free space on the data partition for a safe upgrade:"
		hp_err "  the database takes $((hp_size_kb / 1024)) MB; a copy of it and the upgrade need $((hp_need_kb / 1024)) MB free,"
		hp_err "  and $hp_data has $((hp_free_kb / 1024)) MB free."
		hp_err "Free some space (see 'The SD card is full' in /usr/share/doc/healthpost/README.md.gz),"
		hp_err "then run the install again."
		return 1
	fi
}

# --- end of helpers ---
