# Debian packages infokv needs (sourced by scripts/setup and .ci/run).
# ikv_install_missing installs the missing ones with apt-get, as root or
# through sudo; otherwise it prints the command to run and fails.
IKV_PACKAGES="build-essential autoconf automake libtool pkg-config \
libhdf5-dev hdf5-tools zlib1g-dev libcunit1-dev libpcre2-dev libjansson-dev \
gnuplot-nox python3-h5py python3-numpy openmpi-bin libopenmpi-dev"

ikv_missing_packages() {
    missing=""
    for pkg in $IKV_PACKAGES; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        case "$status" in
            *"install ok installed"*) ;;
            *) missing="$missing $pkg" ;;
        esac
    done
    echo "$missing"
}

ikv_install_missing() {
    missing=$(ikv_missing_packages)
    [ -z "$missing" ] && return 0
    echo "infokv: installing missing Debian packages:$missing" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt_get="apt-get"
    elif command -v sudo >/dev/null 2>&1; then
        apt_get="sudo apt-get"
    else
        echo "infokv: not root and no sudo; run: apt-get install$missing" >&2
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive $apt_get update -q >/dev/null &&
        DEBIAN_FRONTEND=noninteractive $apt_get install -y -q --no-install-recommends $missing >/dev/null ||
        { echo "infokv: apt-get install failed for:$missing" >&2; return 1; }
}
