bin/helper.sh
